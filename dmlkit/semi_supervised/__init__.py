"""Semi-supervised metric learning: a few labels, many unlabelled images.

- :mod:`dmlkit.semi_supervised.label_propagation` — Iscen et al. (CVPR 2019): labels diffused on
  the k-NN graph of the embeddings, with certainty and class-balancing weights.
- :mod:`dmlkit.semi_supervised.mean_teacher` — Tarvainen & Valpola (NeurIPS 2017): an EMA
  teacher and a consistency cost, for any model.
- :mod:`dmlkit.semi_supervised.training` — the three methods notebook 08 compares (supervised
  only, label propagation, mean teacher) under the kit's protocol.
"""

from dmlkit.semi_supervised.label_propagation import (
    LabelPropagation,
    conjugate_gradient,
    knn_affinity,
    normalised_affinity,
    propagate_labels,
)
from dmlkit.semi_supervised.mean_teacher import MeanTeacher, sigmoid_rampup, softmax_mse
from dmlkit.semi_supervised.training import (
    METHODS,
    CosineClassifier,
    fit_semi_supervised,
    labelled_mask,
    run_semi_supervised,
)

__all__ = [
    "LabelPropagation",
    "conjugate_gradient",
    "knn_affinity",
    "normalised_affinity",
    "propagate_labels",
    "MeanTeacher",
    "sigmoid_rampup",
    "softmax_mse",
    "METHODS",
    "CosineClassifier",
    "fit_semi_supervised",
    "labelled_mask",
    "run_semi_supervised",
]
