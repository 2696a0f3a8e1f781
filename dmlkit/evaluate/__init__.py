"""Evaluation: embed a dataset, then score retrieval, clustering and per-class gaps.

The retrieval metrics are the leave-one-out ones of deep metric learning: every item of the set
is a query, the rest of the set is the gallery, and a neighbour counts as relevant when it has the
query's class.

- **Recall@k** — fraction of queries with at least one same-class item among their ``k`` nearest
  neighbours (the query itself excluded). This is the "Recall@k" of DML papers (Song et al.,
  CVPR 2016, "Deep Metric Learning via Lifted Structured Feature Embedding"); Recall@1 is PML's
  ``precision_at_1``.
- **R-Precision** and **MAP@R** — Musgrave, Belongie and Lim, ECCV 2020, "A Metric Learning
  Reality Check" (their proposed accuracy metrics). With ``R`` the number of *other* items of the query's class,
  R-Precision is the number of same-class items among the first ``R`` neighbours divided by ``R``,
  and ``MAP@R = (1/R) * sum_{i<=R} P@i * rel(i)``, ``P@i`` being the precision among the first
  ``i`` neighbours and ``rel(i)`` 1 when neighbour ``i`` has the query's class.

Queries whose class has no other item have nothing to retrieve and are left out of every mean.

The numbers equal pytorch-metric-learning's (PML)::

    AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
                       k="max_bin_count", knn_func=CustomKNN(CosineSimilarity()))
    .get_accuracy(embeddings, labels, embeddings, labels, ref_includes_query=True)

for ``distance="cosine"`` (with ``knn_func=CustomKNN(LpDistance(normalize_embeddings=False))``
for ``distance="euclidean"``), exact ties included: the neighbours are found with the same
``torch.topk`` over the same rows, and the query is removed from its own neighbour list by index,
as PML does. A note on PML's *default* ``knn_func``: it is ``FaissKNN`` (a faiss ``IndexFlatL2``,
squared Euclidean on the raw, unnormalised embeddings), which needs faiss; without faiss (as in
this project) the calculator must be given a ``knn_func``, and ``CustomKNN(CosineSimilarity())``
is the usual choice. For L2-normalised embeddings the two rank neighbours identically up to float
rounding; ``distance="euclidean"`` ranks like faiss's default on any embeddings.

Besides retrieval: :func:`nmi` (k-means clustering quality) and the subgroup view of Dullerud et
al. (:func:`per_class_recall_at_1`, :func:`worst_class_gap`).
"""

from dmlkit.evaluate import clustering, embedding, per_class, retrieval
from dmlkit.evaluate.clustering import nmi
from dmlkit.evaluate.embedding import embed
from dmlkit.evaluate.per_class import mean_per_class, per_class_recall_at_1, summarise_per_class, worst_class_gap
from dmlkit.evaluate.retrieval import DISTANCES, retrieval_metrics

__all__ = [
    *clustering.__all__,
    *embedding.__all__,
    *per_class.__all__,
    *retrieval.__all__,
]
