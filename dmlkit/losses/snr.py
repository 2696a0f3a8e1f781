"""Losses on the signal-to-noise-ratio (SNR) distance (Yuan, Deng, Tang, Tang & Chen, CVPR 2019,
"Signal-To-Noise Ratio: A Robust Distance Metric for Deep Metric Learning").

Yuan et al. treat an anchor embedding ``h_i`` as a *signal* and the difference ``h_j - h_i`` to
another embedding as *noise*. The SNR of the pair is ``Var(h_i) / Var(h_j - h_i)`` (variances
over the feature dimensions), and the SNR distance is its reciprocal::

    d_S(h_i, h_j) = Var(h_j - h_i) / Var(h_i)

(:class:`dmlkit.distances.SNRDistance`). Their "Deep SNR-based Metric Learning" (DSML) puts this
distance into existing pair losses, and adds a regulariser that pushes every embedding towards a
zero-mean distribution over its features::

    L_DSML = L_pairs(d_S) + lambda * 1/N * sum_i | sum_m h_im |

- :class:`SignalToNoiseRatioContrastiveLoss`: the contrastive form, ``[d_S - pos_margin]_+`` for
  positive pairs and ``[neg_margin - d_S]_+`` for negative pairs, each part averaged over its
  non-zero terms, plus the optional regulariser. Equal, values and gradients, to
  pytorch-metric-learning's (PML) ``SignalToNoiseRatioContrastiveLoss`` with
  ``embedding_regularizer=ZeroMeanRegularizer(), embedding_reg_weight=regularizer_weight``
  (``tests/losses/test_snr.py``).
- :class:`SignalToNoiseRatioTripletLoss`: the triplet form that Roth et al. (ICML 2020,
  "Revisiting Training Strategies and Generalization Performance in Deep Metric Learning")
  benchmark as "SNR": ``[d_S(a, p) - d_S(a, n) + 0.2]_+`` averaged over the non-zero terms, plus
  ``0.005 * mean_i |sum_m h_im|`` on the L2-normalised embeddings.
- :class:`ZeroMeanRegularizer`: the regulariser alone (PML's ``ZeroMeanRegularizer``).

Both losses reuse the pair-based machinery (:class:`~dmlkit.losses.pair_based.ContrastiveLoss`,
:class:`~dmlkit.losses.pair_based.TripletMarginLoss`) with an :class:`SNRDistance`; only the
regulariser is new here.

Why the regulariser matters: with L2-normalised, zero-mean embeddings the SNR distance *is* the
squared Euclidean distance, ``d_S(a, b) = ||b - a||^2`` (the variance of a zero-mean vector is its
squared norm over ``D - 1``). The SNR distance differs from the Euclidean one exactly by the
per-sample centring (a constant offset of all features is not noise) and by the scale set by the
anchor's own signal.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_embeddings, check_non_negative
from dmlkit.distances import Distance, SNRDistance
from dmlkit.losses.pair_based import ContrastiveLoss, TripletMarginLoss

__all__ = [
    "ZeroMeanRegularizer",
    "SignalToNoiseRatioContrastiveLoss",
    "SignalToNoiseRatioTripletLoss",
]


class ZeroMeanRegularizer(nn.Module):
    """The zero-mean regulariser of Yuan et al. (CVPR 2019, DSML): ``1/N sum_i |sum_m h_im|``.

    The mean over the ``N`` embeddings of the absolute sum of each embedding's features; it is 0
    when every embedding has zero mean over its features. PML's ``ZeroMeanRegularizer`` (with its
    default mean reduction) on the embeddings as given: ``normalize_embeddings=False``, the
    default. With ``True`` it acts on the L2-normalised embeddings — Roth et al.'s setting, whose
    networks output unit vectors; on a network with unnormalised outputs and a normalising
    distance, the unnormalised form can also be lowered by shrinking every embedding's norm,
    which changes no distance.
    """

    def __init__(self, normalize_embeddings: bool = False) -> None:
        super().__init__()
        self.normalize_embeddings = bool(normalize_embeddings)

    def forward(self, embeddings: Tensor) -> Tensor:
        check_embeddings(embeddings)
        if self.normalize_embeddings:
            embeddings = F.normalize(embeddings, dim=1)
        return embeddings.sum(dim=1).abs().mean()

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}"


def _require_snr(distance: Distance | None) -> SNRDistance:
    if distance is None:
        return SNRDistance()
    if not isinstance(distance, SNRDistance):
        raise ValueError(
            "the SNR losses need an SNRDistance (as PML requires), got "
            f"{type(distance).__name__}; use ContrastiveLoss or TripletMarginLoss for other "
            "distances"
        )
    return distance


class _ZeroMeanRegularized:
    """Adds ``regularizer_weight *`` :class:`ZeroMeanRegularizer` ``(embeddings)`` to the loss
    of the class it is mixed into (before it in the bases), once for both SNR losses."""

    def _init_regularizer(self, regularizer_weight: float, normalize_regularizer: bool) -> None:
        check_non_negative("regularizer_weight", regularizer_weight)
        self.regularizer_weight = float(regularizer_weight)
        self.regularizer = ZeroMeanRegularizer(normalize_regularizer)

    def forward(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor | None = None, ref_labels: Tensor | None = None
    ) -> Tensor:
        loss = super().forward(embeddings, labels, ref_emb, ref_labels)
        if self.regularizer_weight > 0:
            loss = loss + self.regularizer_weight * self.regularizer(embeddings)
        return loss


class SignalToNoiseRatioContrastiveLoss(_ZeroMeanRegularized, ContrastiveLoss):
    """The SNR contrastive loss of DSML (Yuan, Deng, Tang, Tang & Chen, CVPR 2019,
    "Signal-To-Noise Ratio: A Robust Distance Metric for Deep Metric Learning", Sec. 3), in PML's
    form.

    With the SNR distance ``d_ij = Var(h_j - h_i) / Var(h_i)`` (embeddings L2-normalised first,
    as in PML) and ``P``/``N`` the positive/negative pairs of the batch::

        L = mean_{(i,j) in P, term > 0} [d_ij - pos_margin]_+
          + mean_{(i,j) in N, term > 0} [neg_margin - d_ij]_+
          + regularizer_weight * 1/B sum_i |sum_m h_im|

    Both ordered pairs ``(i, j)`` and ``(j, i)`` count, and their distances differ (the SNR
    distance is not symmetric). The regulariser is Yuan et al.'s zero-mean term,
    :class:`ZeroMeanRegularizer`, on the embeddings as given (PML adds its
    ``embedding_regularizer`` to the raw embeddings passed to the loss);
    ``normalize_regularizer=True`` applies it to the L2-normalised embeddings instead.

    Equal to PML's ``SignalToNoiseRatioContrastiveLoss(pos_margin, neg_margin)`` — with
    ``embedding_regularizer=ZeroMeanRegularizer(), embedding_reg_weight=regularizer_weight`` when
    ``regularizer_weight > 0`` — in value and gradient.

    Args:
        pos_margin: positive pairs closer than this cost nothing (PML: 0).
        neg_margin: negative pairs farther than this cost nothing (PML: 1).
        distance: an :class:`~dmlkit.distances.SNRDistance` (the default; normalising); any other
            distance raises ``ValueError`` — use :class:`ContrastiveLoss` for those.
        regularizer_weight: ``lambda``, the weight of the zero-mean regulariser (0: off).
        normalize_regularizer: apply the regulariser to L2-normalised embeddings.

    The regulariser is added in :meth:`forward`; a :class:`CrossBatchMemory` wrapping this loss
    uses the contrastive part only.
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        distance: SNRDistance | None = None,
        *,
        regularizer_weight: float = 0.0,
        normalize_regularizer: bool = False,
    ) -> None:
        super().__init__(pos_margin, neg_margin, _require_snr(distance))
        self._init_regularizer(regularizer_weight, normalize_regularizer)

    def extra_repr(self) -> str:
        return (
            f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}, regularizer_weight={self.regularizer_weight}"
        )


class SignalToNoiseRatioTripletLoss(_ZeroMeanRegularized, TripletMarginLoss):
    """The SNR triplet loss in Roth et al.'s setting (Roth, Milbich, Sinha, Gupta, Ommer & Cohen,
    ICML 2020, "Revisiting Training Strategies and Generalization Performance in Deep Metric
    Learning", their "SNR" criterion), on the SNR distance of Yuan et al. (CVPR 2019, Sec. 3).

    For the mined triplets ``(a, p, n)``::

        L = mean_{triplets, term > 0} [d_S(a, p) - d_S(a, n) + margin]_+
          + regularizer_weight * 1/B sum_i |sum_m h_im|

    with ``d_S`` the SNR distance of L2-normalised embeddings, ``margin=0.2`` and
    ``regularizer_weight=0.005`` (Roth et al.'s defaults) and the zero-mean regulariser on the
    L2-normalised embeddings (their networks output unit vectors). Roth et al. average the
    regulariser over the anchors of the mined triplets; here it is the mean over the batch, the
    same thing for ``mining="all"`` on a balanced P×K batch, where every sample anchors equally
    many triplets. (They set the weight to 0 with distance-weighted sampling.)

    The triplet part is :class:`~dmlkit.losses.pair_based.TripletMarginLoss` with an
    :class:`~dmlkit.distances.SNRDistance`, so it equals PML's ``TripletMarginLoss(margin,
    distance=SNRDistance())`` after the matching ``TripletMarginMiner``; with the regulariser it
    equals PML's with ``embedding_regularizer=ZeroMeanRegularizer(), embedding_reg_weight=0.005``
    fed ``F.normalize(embeddings)`` (values and gradients), or — with
    ``normalize_regularizer=False`` — fed the embeddings themselves.

    Args:
        margin: the triplet margin (0.2).
        mining: ``"all"``, ``"semihard"``, ``"hard"`` or ``"batch_hard"`` (see
            :class:`TripletMarginLoss`).
        distance: an :class:`~dmlkit.distances.SNRDistance` (default); others raise ``ValueError``.
        regularizer_weight: weight of the zero-mean regulariser (0.005; 0: off).
        normalize_regularizer: regularise the L2-normalised embeddings (``True``, Roth et al.).
        reduction, smooth_loss: as in :class:`TripletMarginLoss`.
    """

    def __init__(
        self,
        margin: float = 0.2,
        mining: Literal["all", "semihard", "hard", "batch_hard"] = "all",
        distance: SNRDistance | None = None,
        *,
        regularizer_weight: float = 0.005,
        normalize_regularizer: bool = True,
        reduction: Literal["avg_nonzero", "mean"] = "avg_nonzero",
        smooth_loss: bool = False,
    ) -> None:
        super().__init__(margin, mining, _require_snr(distance), reduction=reduction, smooth_loss=smooth_loss)
        self._init_regularizer(regularizer_weight, normalize_regularizer)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, regularizer_weight={self.regularizer_weight}"
