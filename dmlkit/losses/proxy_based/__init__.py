"""Proxy-based losses: each class is represented by learnable vectors (proxies) kept in the loss.

A proxy loss compares every embedding of the batch with a small set of class representatives
instead of with the other embeddings of the batch, so it needs no pair or triplet mining and sees
every class at every step. The representatives are ordinary parameters: give the loss's
parameters to the optimiser (usually with a larger learning rate than the network's) and plot them
from :attr:`proxies`.

Every loss here keeps them in a parameter named ``proxies`` of shape
``(num_classes, embedding_size)``; :class:`SoftTripleLoss` keeps ``centers_per_class`` of them
per class, ``(num_classes * centers_per_class, embedding_size)`` with row ``c * K + k`` the
centre ``k`` of class ``c``. Embeddings and proxies are L2-normalised inside the losses, so the
proxies' norms carry no meaning (only their directions do).

- :class:`ProxyNCALoss` — Movshovitz-Attias et al., ICCV 2017, and the ProxyNCA++ setting of
  Teh et al., ECCV 2020 (:meth:`ProxyNCALoss.proxynca_plus_plus`).
- :class:`ProxyAnchorLoss` — Kim et al., CVPR 2020.
- :class:`SoftTripleLoss` and :class:`SparseCentersRegularizer` — Qian et al., ICCV 2019.
- :class:`NormalizedSoftmaxLoss` — Zhai & Wu, BMVC 2019.

Comparing with pytorch-metric-learning (PML)
--------------------------------------------
Class and argument names are PML's. The parameters are laid out as rows here; to copy them
across: PML ``ProxyNCALoss.proxies`` and ``ProxyAnchorLoss.proxies`` are ``(C, D)`` like ours,
``SoftTripleLoss.fc`` is ``(D, C*K)`` (our ``proxies.T``) and ``NormalizedSoftmaxLoss.W`` is
``(D, C)`` (our ``proxies.T``). With the same proxies, the values and gradients equal PML's (the
tests check this in float64), with the deviations documented on each class.

Large output spaces: sampled negative proxies
---------------------------------------------
With many classes, the ``(batch, num_classes)`` similarity matrix and its backward pass dominate
the cost. Following Reddi et al. (AISTATS 2019, "Stochastic Negative Mining for Learning with Large
Output Spaces"), the losses accept ``negative_sampling`` and ``num_negatives``: at each call only
the proxies of the classes present in the batch (the positives) plus ``num_negatives`` proxies of
absent classes take part; all rows of the batch share that subset, so the cost falls from
``B x C`` to ``B x (P + k)`` for ``P`` classes in the batch.

- ``"random"``: ``k`` absent classes drawn uniformly without replacement (torch's global RNG;
  seed it with :func:`dmlkit.utils.seed_everything`), importance-weighted by ``M / k`` for ``M``
  absent classes. For the softmax losses (ProxyNCA, NormalizedSoftmax, SoftTriple) this is the
  *sampled softmax* estimator (Bengio & Senecal, 2008; Jean et al., ACL 2015): ``log(M / k)`` is
  added to each sampled logit, so the sum over sampled negatives in the denominator is an
  unbiased estimate of the sum over all negatives. The loss itself is then a slightly optimistic
  (lower) estimate of the full loss (Jensen), the gap closing as ``k`` grows. For Proxy-Anchor,
  whose negative part is a *sum over proxies*, the sampled proxies' terms are multiplied by
  ``M / k``: the loss and its gradient are unbiased estimates of the full ones.
- ``"hardest"`` (Reddi et al.'s stochastic negative mining, softmax losses only): the ``k``
  absent classes whose proxies are most similar to some embedding of the batch (``max`` over the
  batch and, for SoftTriple, over the class's centres), found among all absent classes or, with
  ``negative_pool_size=m``, among ``m`` drawn uniformly (the paper's two-stage scheme: sample,
  then keep the top ``k``). No weight is applied. The classes left out are the ones least similar
  to the batch, whose terms in the softmax denominators are small when the softmax is peaked (the
  large scales these losses use), so the value is a lower bound of the full loss that is tight
  in that regime. Reddi et al. frame losses on the hardest negatives as surrogates for top-k
  retrieval (is the true class among the highest scores?) rather than as estimates of the full
  softmax. Finding the hardest costs one forward-only product with the candidates (all absent
  proxies, or the ``m`` drawn); the backward pass is restricted to the subset. Deviation from the
  paper: it mines per example; here one subset is shared by the whole batch, so a single matrix
  product serves all rows. ``"hardest"`` is refused for Proxy-Anchor: there every absent proxy
  adds a non-negligible ``log(1 + sum exp)`` term, so keeping only the hardest would throw away
  most of the loss.

When ``num_negatives`` is at least the number of absent classes every class takes part and the
loss equals the full loss (the tests check this). Centres of SoftTriple's regulariser are always
all of them (it does not depend on the batch).
"""

from dmlkit.losses.proxy_based import normalized_softmax, proxy_anchor, proxy_nca, soft_triple
from dmlkit.losses.proxy_based.normalized_softmax import NormalizedSoftmaxLoss
from dmlkit.losses.proxy_based.proxy_anchor import ProxyAnchorLoss
from dmlkit.losses.proxy_based.proxy_nca import (
    PROXYNCA_PLUS_PLUS_LR,
    PROXYNCA_PLUS_PLUS_PROXY_LR,
    PROXYNCA_PLUS_PLUS_SOFTMAX_SCALE,
    ProxyNCALoss,
)
from dmlkit.losses.proxy_based.soft_triple import SoftTripleLoss, SparseCentersRegularizer

__all__ = [
    *normalized_softmax.__all__,
    *proxy_anchor.__all__,
    *proxy_nca.__all__,
    *soft_triple.__all__,
]
