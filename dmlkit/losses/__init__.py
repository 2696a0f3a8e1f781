"""Metric-learning losses, one module per family of methods.

Every loss is a ``torch.nn.Module`` whose ``forward(embeddings, labels)`` returns a scalar tensor.
Where pytorch-metric-learning has the same loss, the class and argument names are the same.

- :mod:`dmlkit.losses.classification` — softmax cross-entropy baseline (a linear classifier).
- :mod:`dmlkit.losses.pair_based` — contrastive, triplet, lifted structure, N-pair,
  multi-similarity, ranked list, circle; cross-batch memory (XBM).
- :mod:`dmlkit.losses.proxy_based` — ProxyNCA (and ProxyNCA++), Proxy-Anchor, SoftTriple,
  normalised softmax; sampled negative proxies for large output spaces.
- :mod:`dmlkit.losses.ap_ranking` — FastAP, Smooth-AP and the exact average precision.
- :mod:`dmlkit.losses.snr` — contrastive and triplet losses on the signal-to-noise-ratio distance,
  the zero-mean regulariser.
- :mod:`dmlkit.losses.hyperbolic` — pairwise cross-entropy in the Poincaré ball (and its
  spherical baseline), hyperbolic prototypes.
- :mod:`dmlkit.losses.rho_regularization` — Roth et al.'s ρ-regularisation for the pair-based
  losses (switch an anchor's negative for a positive with probability ``p_switch``).
"""

from dmlkit.losses.ap_ranking import FastAPLoss, SmoothAPLoss
from dmlkit.losses.classification import SoftmaxCrossEntropyLoss
from dmlkit.losses.hyperbolic import HyperbolicPrototypeLoss, PairwiseCrossEntropyLoss
from dmlkit.losses.pair_based import (
    CircleLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NPairsLoss,
    RankedListLoss,
    TripletMarginLoss,
)
from dmlkit.losses.proxy_based import (
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    SoftTripleLoss,
    SparseCentersRegularizer,
)
from dmlkit.losses.rho_regularization import rho_regularize
from dmlkit.losses.snr import (
    SignalToNoiseRatioContrastiveLoss,
    SignalToNoiseRatioTripletLoss,
    ZeroMeanRegularizer,
)

__all__ = [
    "SoftmaxCrossEntropyLoss",
    "ContrastiveLoss",
    "TripletMarginLoss",
    "LiftedStructureLoss",
    "NPairsLoss",
    "MultiSimilarityLoss",
    "RankedListLoss",
    "CircleLoss",
    "CrossBatchMemory",
    "ProxyNCALoss",
    "ProxyAnchorLoss",
    "SoftTripleLoss",
    "NormalizedSoftmaxLoss",
    "SparseCentersRegularizer",
    "SignalToNoiseRatioContrastiveLoss",
    "SignalToNoiseRatioTripletLoss",
    "ZeroMeanRegularizer",
    "FastAPLoss",
    "SmoothAPLoss",
    "PairwiseCrossEntropyLoss",
    "HyperbolicPrototypeLoss",
    "rho_regularize",
]
