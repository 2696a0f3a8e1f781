"""Few-shot classification: metric learning judged on episodes of a handful of labelled images.

An *episode* (Vinyals et al., NeurIPS 2016) draws ``n_way`` classes never seen in training, a
*support set* of ``k_shot`` labelled images of each and a *query set* to classify. A metric
few-shot classifier embeds both sets with a trained network and labels each query by comparing
it with the support embeddings; no weight is changed at test time.

Classifiers (``nn.Module`` heads working on embeddings, never on images)
-----------------------------------------------------------------------
- :class:`PrototypicalNetworks` — Snell, Swersky & Zemel, "Prototypical Networks for Few-shot
  Learning", NeurIPS 2017: a class is its *prototype*, the mean support embedding (Eq. 1), and a
  query's logits are the negative squared Euclidean distances to the prototypes (Eq. 2). Cosine
  similarity and the non-squared distance (easyfsl's choice) are options.
- :class:`MatchingNetworks` — Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching
  Networks for One Shot Learning", NeurIPS 2016: attention over the support set by cosine
  similarity (Eqs. 1–2), **without** the full-context embeddings (the LSTMs ``f`` and ``g`` of
  their Sec. 2.1.2); returns log-probabilities, as easyfsl does.
- :class:`SemiSupervisedPrototypes` — Ren, Triantafillou, Ravi, Snell, Swersky, Tenenbaum,
  Larochelle & Zemel, "Meta-Learning for Semi-Supervised Few-Shot Classification", ICLR 2018:
  prototypes refined by soft k-means over unlabelled images (Sec. 3.1, Eq. 4), optionally with
  a distractor cluster at the origin (Eqs. 5–6) or with masking (Eqs. 7–8).
- :class:`HyperbolicPrototypicalNetworks` — Khrulkov, Mirvakhabova, Ustinova, Oseledets &
  Lempitsky, "Hyperbolic Image Embeddings", CVPR 2020: embeddings in the Poincaré ball,
  prototypes as Einstein midpoints (:func:`dmlkit.geometry.einstein_midpoint`), logits the
  negative hyperbolic distance.

Every head is called as ``head(support, support_labels, query)`` and returns ``(Q, n_way)``
scores (logits or log-probabilities; the cross-entropy of either is the episode's loss). The
support labels are the episode's own labels ``0 .. n_way-1``; a leading batch dimension of
episodes, ``(B, S, D)`` / ``(B, S)`` / ``(B, Q, D)``, is accepted everywhere and gives
``(B, Q, n_way)`` — the evaluation runs hundreds of episodes at once that way.

Training and evaluation
-----------------------
- :class:`EpisodicLoss` turns a head into a ``loss(embeddings, labels)`` for
  :func:`dmlkit.train.fit`: each class of a P×K batch gives ``k_shot`` support and ``K - k_shot``
  query images, so ``fit(..., P=n_way, K=k_shot + n_query)`` is episodic training.
- :func:`sample_episodes`, :func:`evaluate_embeddings` and :func:`evaluate_episodes` run the
  standard protocol: the mean accuracy over (at least 600) seeded episodes with a 95% confidence
  interval (:func:`confidence_interval`). The data set is embedded once and episodes index it.
  :func:`paired_difference` compares two methods on the same episodes;
  :func:`format_accuracy_table` prints results as a Markdown table.
"""

from dmlkit.few_shot import classifiers, episodes, heads, hyperbolic, protocol, semi_supervised
from dmlkit.few_shot.classifiers import make_classifier
from dmlkit.few_shot.episodes import Episodes, EpisodicLoss, sample_episodes, split_support_query
from dmlkit.few_shot.heads import (
    FewShotClassifier,
    MatchingNetworks,
    PrototypicalNetworks,
    class_means,
    distance_statistics,
)
from dmlkit.few_shot.hyperbolic import HyperbolicPrototypicalNetworks
from dmlkit.few_shot.protocol import (
    confidence_interval,
    evaluate_embeddings,
    evaluate_episodes,
    paired_difference,
)
from dmlkit.few_shot.semi_supervised import SemiSupervisedPrototypes

__all__ = [
    *classifiers.__all__,
    *episodes.__all__,
    *heads.__all__,
    *hyperbolic.__all__,
    *protocol.__all__,
    *semi_supervised.__all__,
]
