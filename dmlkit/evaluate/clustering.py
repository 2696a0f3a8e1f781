"""Normalised mutual information of k-means clusters against the labels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_embeddings_and_labels

__all__ = ["nmi"]


def nmi(
    embeddings: Tensor, labels: Tensor, seed: int = 0, n_init: int = 10, normalize_embeddings: bool = True
) -> float:
    """Normalised mutual information between the labels and a k-means clustering.

    k-means (scikit-learn's ``KMeans``, ``k`` = number of classes, ``n_init`` restarts seeded by
    ``seed``) clusters the embeddings, and ``normalized_mutual_info_score`` (arithmetic mean
    normalisation) compares the clusters with the classes — the clustering score of Song et al.,
    CVPR 2016, reported alongside Recall@k in most DML papers.

    Args:
        embeddings: ``(N, D)`` floating tensor.
        labels: ``(N,)`` integer labels.
        seed: random state of k-means.
        n_init: k-means restarts (fixed, not scikit-learn's ``"auto"``, so results do not depend
            on its version).
        normalize_embeddings: L2-normalise rows first, to cluster on the sphere where cosine
            retrieval ranks (PML clusters the raw embeddings: pass ``False`` for that).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    check_embeddings_and_labels(embeddings, labels)
    if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    vectors = embeddings.detach().to("cpu", torch.float64)
    if normalize_embeddings:
        vectors = F.normalize(vectors, dim=1)
    truth = labels.detach().cpu().numpy()
    num_classes = len(np.unique(truth))
    clusters = KMeans(n_clusters=num_classes, n_init=n_init, random_state=seed).fit_predict(vectors.numpy())
    return float(normalized_mutual_info_score(truth, clusters))
