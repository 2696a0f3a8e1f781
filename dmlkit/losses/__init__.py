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
- :mod:`dmlkit.losses.self_supervised` — instance discrimination without labels: Wu et al.'s
  memory bank, Ye et al.'s invariant and spreading instance loss, SimCLR's NT-Xent.
- Roth et al.'s ρ-regularisation is the ``p_switch`` of the distance-weighted losses
  (:class:`MarginLoss`, :class:`DistanceWeightedTripletLoss`): with that probability an anchor's
  sampled triplet becomes ``(a, a, p')``.
"""

from dmlkit.losses.ap_ranking import FastAPLoss, SmoothAPLoss
from dmlkit.losses.classification import SoftmaxCrossEntropyLoss
from dmlkit.losses.hyperbolic import HyperbolicPrototypeLoss, PairwiseCrossEntropyLoss
from dmlkit.losses.pair_based import (
    CircleLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    DistanceWeightedMiner,
    DistanceWeightedTripletLoss,
    LiftedStructureLoss,
    MarginLoss,
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
from dmlkit.losses.self_supervised import InstanceSpreadingLoss, MemoryBankInstanceLoss, NTXentLoss
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
    "DistanceWeightedMiner",
    "DistanceWeightedTripletLoss",
    "MarginLoss",
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
    "NTXentLoss",
    "InstanceSpreadingLoss",
    "MemoryBankInstanceLoss",
]
