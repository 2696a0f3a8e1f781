"""ρ-regularisation (Roth, Milbich, Sinha, Gupta, Ommer & Cohen, ICML 2020, "Revisiting Training
Strategies and Generalization Performance in Deep Metric Learning", Sec. 5).

Roth et al. measure the compression of an embedding by its spectral decay ρ
(:func:`dmlkit.analysis.spectral_decay`) and find that ranking losses which compress less (lower
ρ) generalise better to unseen classes. Their regulariser works through the tuples a ranking loss
sees: with probability ``p_switch`` an anchor's negative is replaced by one of its positives, so
the loss pushes a same-class sample away and the network keeps some of the intra-class variation
it would otherwise discard. They use ``p_switch`` between 0.15 and 0.4.

:func:`rho_regularize` turns it on for any mask-based pair loss of
:mod:`dmlkit.losses.pair_based` (contrastive, triplet, lifted structure, multi-similarity, ranked
list, circle, the SNR losses, and the loss inside a :class:`CrossBatchMemory`); the switch itself
is :func:`dmlkit.miners.switch_negatives`. Training through :func:`dmlkit.experiment.run_method`
with ``Budget(p_switch=...)`` applies it for you.
"""

from __future__ import annotations

from torch import nn

from dmlkit.checks import check_probability
from dmlkit.losses.pair_based import CrossBatchMemory, PairBasedLoss

__all__ = ["rho_regularize"]


def rho_regularize(loss: nn.Module, p_switch: float) -> nn.Module:
    """Turn on ρ-regularisation with switch probability ``p_switch`` and return ``loss`` itself.

    The switch acts in training mode only (``loss.train()``, as :func:`dmlkit.train.fit` sets
    it); in eval mode the loss is the plain one. ``p_switch=0`` turns it off.

    Raises:
        ValueError: ``p_switch`` outside ``[0, 1]``, or a loss without the pair masks the switch
            works on (proxy, classification, AP-ranking, episodic and hyperbolic losses, and the
            N-pair loss, which builds its own pairs).
    """
    check_probability("p_switch", p_switch)
    target = loss.loss if isinstance(loss, CrossBatchMemory) else loss
    if not isinstance(target, PairBasedLoss) or not target.supports_rho_regularization:
        raise ValueError(
            "ρ-regularisation switches negatives for positives in a pair-based loss's pair masks; "
            f"{type(target).__name__} has none. Use a loss of dmlkit.losses.pair_based other than "
            "NPairsLoss (contrastive, triplet, multi-similarity, ...)"
        )
    target.p_switch = float(p_switch)
    return loss
