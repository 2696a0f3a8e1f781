"""Binary codes for retrieval: binarisation, Hamming distance and Hamming-space retrieval metrics.

Deep hashing replaces a float embedding by a code of ``b`` bits, compared with the Hamming
distance (the number of differing bits). Yuan et al. (CVPR 2019, "Signal-To-Noise Ratio: A Robust
Distance Metric for Deep Metric Learning") extend the SNR distance to deep hashing; this module
gives the pieces a comparison of Euclidean- and SNR-trained embeddings *once binarised* needs:

- :func:`binarize` (``sign``, with 0 mapped to +1) and :class:`HashHead`, a linear layer whose
  output is relaxed by ``tanh`` in training (so gradients flow) and binarised by ``sign`` in eval;
- :func:`fit_sign_projection`: codes of any length from a trained embedding, by a projection fitted
  on the *training* classes — PCA, PCA followed by ITQ's rotation (Gong & Lazebnik, CVPR 2011,
  "Iterative Quantization"), or random hyperplanes (Charikar, STOC 2002, "SimHash");
- :func:`hamming_distance` and :func:`hamming_retrieval_metrics` (Recall@k, MAP@R, R-Precision as
  in :mod:`dmlkit.evaluate`) with an explicit rule for ties.

Codes are tensors of ``-1.0``/``+1.0`` (one row per item). For such codes of ``b`` bits,
``<x, y> = b - 2 H(x, y)``, so ``H(x, y) = (b - <x, y>) / 2`` and the cosine similarity is
``1 - 2 H / b``: ranking by cosine similarity *is* ranking by Hamming distance, and
``dmlkit.evaluate.retrieval_metrics(codes, labels, distance="cosine")`` ranks by Hamming distance.
What it does not control is the order of **ties**, and short codes tie a lot (16 bits give only
17 possible distances). :func:`hamming_retrieval_metrics` therefore orders tied items by a stated
rule: ``"index"`` (lower index first, the order of :func:`dmlkit.neighbors.exact_knn` and so of
the retrieval figures), ``"pessimistic"`` (other-class items first: the lowest value any tie order
can give) or ``"optimistic"`` (same-class items first: the highest). The two bounds bracket
``retrieval_metrics``' value, whatever order ``torch.topk`` gives tied items
(``tests/test_hashing.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_chunk_size, check_embeddings, check_embeddings_and_labels, check_ks
from dmlkit.distances import snr_ranking_embeddings
from dmlkit.ranking import MetricAccumulator, retrieval_queries

__all__ = [
    "binarize",
    "HashHead",
    "SignProjection",
    "fit_sign_projection",
    "hamming_distance",
    "hamming_retrieval_metrics",
]

TIES = ("index", "pessimistic", "optimistic")
PREPROCESS = ("normalize", "snr", "none")
_CHUNK_BUDGET_BYTES = 256 * 2**20


def binarize(x: Tensor) -> Tensor:
    """``sign(x)`` as ``-1.0``/``+1.0`` in ``x``'s floating dtype, with ``sign(0) = +1`` so every
    bit is set. No gradient flows through it (use :class:`HashHead` in training)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return torch.where(x >= 0, 1.0, -1.0).to(dtype).detach()


class HashHead(nn.Module):
    """A hashing layer: ``tanh(scale * (W x + c))`` in training, ``sign(W x + c)`` in eval.

    The ``tanh`` relaxation is the usual way to train binary codes by gradient descent (e.g. DSH,
    Liu et al., CVPR 2016; HashNet, Cao et al., ICCV 2017, which raises ``scale`` during training
    so that ``tanh`` approaches ``sign``). Put it after an embedder:
    ``nn.Sequential(model, HashHead(embedding_size, num_bits))``; in eval mode it returns codes of
    ``-1.0``/``+1.0`` for :func:`hamming_retrieval_metrics`.

    Args:
        in_features: size of the input embedding.
        num_bits: code length ``b``.
        scale: slope of the ``tanh`` relaxation (larger: closer to ``sign``); set ``.scale`` to
            anneal it.
    """

    def __init__(self, in_features: int, num_bits: int, scale: float = 1.0) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_bits", num_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self.linear = nn.Linear(in_features, num_bits)
        self.num_bits = num_bits
        self.scale = float(scale)

    def forward(self, embeddings: Tensor) -> Tensor:
        check_embeddings(embeddings)
        z = self.linear(embeddings)
        return torch.tanh(self.scale * z) if self.training else binarize(z)

    def extra_repr(self) -> str:
        return f"in_features={self.linear.in_features}, num_bits={self.num_bits}, scale={self.scale}"


# --------------------------------------------------------------------------------------------
# Codes from a trained embedding
# --------------------------------------------------------------------------------------------


def _preprocess(embeddings: Tensor, preprocess: str) -> Tensor:
    x = embeddings.detach().to(torch.float64)
    if preprocess == "normalize":
        return F.normalize(x, dim=1)
    if preprocess == "snr":
        return snr_ranking_embeddings(x)
    return x


@dataclass
class SignProjection:
    """``codes = sign((pre(x) - mean) @ projection)``, fitted by :func:`fit_sign_projection`.

    ``pre`` is the preprocessing named by ``preprocess`` (``"normalize"``: L2 normalisation;
    ``"snr"``: normalisation then centring over the features,
    :func:`~dmlkit.distances.snr_ranking_embeddings`; ``"none"``).
    """

    mean: torch.Tensor
    projection: torch.Tensor
    preprocess: str
    method: str

    @property
    def num_bits(self) -> int:
        return self.projection.shape[1]

    def __call__(self, embeddings: Tensor) -> Tensor:
        check_embeddings(embeddings)
        if embeddings.shape[1] != self.projection.shape[0]:
            raise ValueError(
                f"this projection takes {self.projection.shape[0]}-d embeddings, got {embeddings.shape[1]}-d"
            )
        x = _preprocess(embeddings.cpu(), self.preprocess) - self.mean
        return binarize((x @ self.projection).float())


def fit_sign_projection(
    embeddings: Tensor,
    num_bits: int,
    method: Literal["itq", "pca", "random"] = "itq",
    preprocess: Literal["normalize", "snr", "none"] = "normalize",
    iterations: int = 50,
    seed: int = 0,
) -> SignProjection:
    """Fit a projection to ``num_bits`` sign bits on ``embeddings`` (use the training classes).

    - ``"pca"``: the ``num_bits`` leading principal directions of the centred embeddings; one bit
      per direction (PCAH). Needs ``num_bits <= D``.
    - ``"itq"``: PCA, then the rotation that minimises the quantisation error
      ``||sign(V R) - V R||_F`` by ``iterations`` alternating steps (Gong & Lazebnik, CVPR 2011,
      "Iterative Quantization", Sec. 2.3; an orthogonal Procrustes problem per step). Needs
      ``num_bits <= D``.
    - ``"random"``: Gaussian random hyperplanes through the mean (SimHash, Charikar, STOC 2002):
      the probability that a bit differs is the angle between the two centred vectors over
      ``pi``. Any ``num_bits``.

    Everything is computed in float64 on the CPU from a generator seeded with ``seed``.
    """
    check_embeddings(embeddings)
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
        raise ValueError(f"num_bits must be a positive integer, got {num_bits!r}")
    if method not in ("itq", "pca", "random"):
        raise ValueError(f"method must be 'itq', 'pca' or 'random', got {method!r}")
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    n, dim = embeddings.shape
    if method != "random" and num_bits > dim:
        raise ValueError(
            f"{method} gives at most one bit per dimension: num_bits={num_bits} > D={dim}; "
            "use method='random' for longer codes"
        )
    if method != "random" and n < 2:
        raise ValueError(f"{method} needs at least 2 embeddings to fit, got {n}")
    generator = torch.Generator().manual_seed(seed)
    x = _preprocess(embeddings.cpu(), preprocess)
    mean = x.mean(dim=0)
    centred = x - mean
    if method == "random":
        projection = torch.randn(dim, num_bits, generator=generator, dtype=torch.float64)
        return SignProjection(mean, projection, preprocess, method)
    covariance = centred.T @ centred / (n - 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    projection = vectors.flip(1)[:, :num_bits]
    if method == "itq":
        # The iterations run in float32 (a sign and a small SVD per step): the rotation only has
        # to be a good one, not a bitwise-reproducible float64 one.
        v = (centred @ projection).float()
        gaussian = torch.randn(num_bits, num_bits, generator=generator, dtype=torch.float64)
        rotation = torch.linalg.qr(gaussian)[0].float()
        for _ in range(iterations):
            codes = (v @ rotation >= 0).float() * 2 - 1
            u, _, wt = torch.linalg.svd((v.T @ codes).double())
            rotation = (u @ wt).float()  # argmax_R tr(B^T V R) over orthogonal R
        projection = projection @ rotation.double()
    return SignProjection(mean, projection, preprocess, method)


# --------------------------------------------------------------------------------------------
# Hamming distance and retrieval
# --------------------------------------------------------------------------------------------


def _check_codes(codes: Tensor, name: str = "codes") -> None:
    check_embeddings(codes, name)
    if not bool(((codes == 1) | (codes == -1)).all()):
        raise ValueError(f"{name} must hold only -1 and +1 (binarise with dmlkit.hashing.binarize first)")


def hamming_distance(codes: Tensor, others: Tensor | None = None) -> Tensor:
    """The ``(M, N)`` Hamming distances (``int64``) between ``-1/+1`` codes (default: ``codes``
    against themselves), as ``(b - <x, y>) / 2``. Exact: inner products of ``-1/+1`` vectors are
    integers, represented exactly in float32 up to ``2**24`` bits."""
    _check_codes(codes, "codes")
    others = codes if others is None else others
    if others is not codes:
        _check_codes(others, "others")
        if others.shape[1] != codes.shape[1]:
            raise ValueError(f"codes have {codes.shape[1]} bits but others have {others.shape[1]}")
    bits = codes.shape[1]
    dtype = torch.float64 if bits > 2**24 else torch.float32
    inner = codes.to(dtype) @ others.to(dtype).T
    return torch.round((bits - inner) / 2).to(torch.int64)


def hamming_retrieval_metrics(
    codes: Tensor,
    labels: Tensor,
    ks: int | Sequence[int] = (1, 2, 4, 8),
    ties: Literal["index", "pessimistic", "optimistic"] = "index",
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Leave-one-out Recall@k, MAP@R and R-Precision of ``-1/+1`` codes under Hamming distance.

    The definitions are those of :func:`dmlkit.evaluate.retrieval_metrics` (every item a query,
    the query itself excluded, queries without another item of their class left out); the
    neighbours are ranked by Hamming distance, and items at the same distance from a query by
    ``ties``:

    - ``"index"``: lower index first (the order of :func:`dmlkit.neighbors.exact_knn`);
    - ``"pessimistic"``: items of other classes first, then by index — the lowest value of every
      metric over all orderings of the ties;
    - ``"optimistic"``: items of the query's class first — the highest.

    Every ranking is made strict by a unique integer key per (query, item), so the result does
    not depend on how a sort orders equal keys. The query-by-gallery matrix is computed
    ``chunk_size`` rows at a time (default: about 256 MB).

    Returns:
        ``{"recall@k": ..., "map@r": ..., "r_precision": ...}`` as floats in ``[0, 1]``.
    """
    _check_codes(codes)
    check_embeddings_and_labels(codes.to(torch.float32), labels)
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    num_items, bits = codes.shape
    ks = check_ks(ks, num_items)
    check_chunk_size(chunk_size)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_BUDGET_BYTES // (40 * num_items))
    labels = labels.to(codes.device)
    others, is_query = retrieval_queries(labels)
    queries = is_query.nonzero().flatten()
    max_r = int(others.max())
    depth = min(max(max_r, *ks), num_items - 1)
    # key = 2 H N + secondary, secondary in [0, 2N): distinct for every item of a row, ordered by
    # Hamming distance first. Integers below 2**24 are exact in float32, otherwise float64.
    dtype = torch.float32 if 2 * num_items * (bits + 2) < 2**24 else torch.float64
    values = codes.to(dtype)
    index = torch.arange(num_items, device=codes.device, dtype=dtype)
    self_key = float(2 * num_items * (bits + 1))  # beyond every real key

    accumulator = MetricAccumulator(ks, max_r)
    for start in range(0, queries.numel(), chunk_size):
        rows = queries[start : start + chunk_size]
        same = labels[rows].unsqueeze(1) == labels.unsqueeze(0)
        # b - <x, y> = 2 H, so (b - <x, y>) N = 2 H N
        key = (bits - values[rows] @ values.T).mul_(num_items)
        if ties == "pessimistic":
            key += same.to(dtype) * num_items
        elif ties == "optimistic":
            key += (~same).to(dtype) * num_items
        key += index
        key[torch.arange(rows.numel(), device=codes.device), rows] = self_key
        order = torch.topk(key, depth, dim=1, largest=False, sorted=True).indices
        accumulator.add(same.gather(1, order), others[rows])
    return accumulator.result()
