"""Distances and similarities between embeddings, shared by the losses that take one.

A distance object maps query embeddings ``(M, D)`` and reference embeddings ``(N, D)`` to an
``(M, N)`` matrix. ``is_similarity`` says which way is "closer": ``True`` for similarities (larger
is closer, e.g. cosine), ``False`` for distances (smaller is closer). Losses that accept a
``distance`` argument use :meth:`Distance.closer_margin` so that one hinge formula serves both.

The names follow pytorch-metric-learning where it has the same object: ``EuclideanDistance`` is
PML's ``LpDistance(p=2, power=1)``, ``CosineSimilarity`` and ``SNRDistance`` are PML's. As in PML,
embeddings are L2-normalised first unless ``normalize_embeddings=False``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_embeddings, check_positive

__all__ = [
    "DISTANCE_NAMES",
    "Distance",
    "DistanceModule",
    "EuclideanDistance",
    "DotProductSimilarity",
    "CosineSimilarity",
    "SNRDistance",
    "PrecomputedSimilarity",
    "get_distance",
]


class Distance(nn.Module):
    """Base class: normalisation, shape checks and the ``(M, N)`` matrix.

    Subclasses implement :meth:`_matrix` (``(M, D) x (N, D) -> (M, N)``) and :meth:`_paired`
    (row-wise, ``(B, D) x (B, D) -> (B,)``).
    """

    is_similarity: bool = False

    def __init__(self, normalize_embeddings: bool = True) -> None:
        super().__init__()
        self.normalize_embeddings = normalize_embeddings

    def _prepare(self, embeddings: Tensor, name: str) -> Tensor:
        check_embeddings(embeddings, name)
        return F.normalize(embeddings, dim=1) if self.normalize_embeddings else embeddings

    def forward(self, query: Tensor, reference: Tensor | None = None) -> Tensor:
        """The ``(M, N)`` matrix between ``query`` rows and ``reference`` rows (default: query)."""
        q = self._prepare(query, "query")
        r = q if reference is None else self._prepare(reference, "reference")
        if q.shape[1] != r.shape[1]:
            raise ValueError(f"query has {q.shape[1]} dimensions but reference has {r.shape[1]}")
        return self._matrix(q, r)

    def paired(self, first: Tensor, second: Tensor) -> Tensor:
        """Row-wise values between aligned rows ``first[i]`` and ``second[i]``."""
        a, b = self._prepare(first, "first"), self._prepare(second, "second")
        if a.shape != b.shape:
            raise ValueError(f"paired inputs must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        return self._paired(a, b)

    def closer_margin(self, closer: Tensor, farther: Tensor) -> Tensor:
        """How much ``farther`` is farther than ``closer`` (positive when correctly ordered)."""
        return closer - farther if self.is_similarity else farther - closer

    def _matrix(self, query: Tensor, reference: Tensor) -> Tensor:
        raise NotImplementedError

    def _paired(self, first: Tensor, second: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}"


class _SafeSqrt(torch.autograd.Function):
    """``sqrt`` whose gradient at 0 is 0 instead of infinite (identical rows stay finite)."""

    @staticmethod
    def forward(ctx, squared: Tensor) -> Tensor:  # type: ignore[override]
        root = squared.sqrt()
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (root,) = ctx.saved_tensors
        return torch.where(root > 0, grad / (2.0 * root), torch.zeros_like(grad))


class EuclideanDistance(Distance):
    """Euclidean distance ``||a - b||`` (or its square with ``squared=True``).

    The gradient of the non-squared distance at zero distance is undefined; like PML, the
    distance of identical rows is computed from a clamped square so gradients stay finite.
    """

    def __init__(self, normalize_embeddings: bool = True, squared: bool = False) -> None:
        super().__init__(normalize_embeddings)
        self.squared = squared

    def _finish(self, squared_distance: Tensor) -> Tensor:
        squared_distance = squared_distance.clamp_min(0.0)
        if self.squared:
            return squared_distance
        return _SafeSqrt.apply(squared_distance)

    def _matrix(self, query: Tensor, reference: Tensor) -> Tensor:
        squared = query.pow(2).sum(1, keepdim=True) - 2.0 * query @ reference.T + reference.pow(2).sum(1).unsqueeze(0)
        return self._finish(squared)

    def _paired(self, first: Tensor, second: Tensor) -> Tensor:
        return self._finish((first - second).pow(2).sum(1))

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}, squared={self.squared}"


class DotProductSimilarity(Distance):
    """Dot product ``<a, b>``; a similarity. With ``normalize_embeddings=True`` (the default, as in
    PML) it is the cosine similarity; with ``False`` it is the raw inner product that Sohn's N-pair
    loss uses."""

    is_similarity = True

    def _matrix(self, query: Tensor, reference: Tensor) -> Tensor:
        return query @ reference.T

    def _paired(self, first: Tensor, second: Tensor) -> Tensor:
        return (first * second).sum(1)


class CosineSimilarity(DotProductSimilarity):
    """Cosine similarity ``<a, b> / (||a|| ||b||)``; a similarity (larger is closer)."""

    def __init__(self) -> None:
        super().__init__(normalize_embeddings=True)

    def extra_repr(self) -> str:
        return ""


class SNRDistance(Distance):
    """Signal-to-noise-ratio distance (Yuan et al., CVPR 2019, "Signal-To-Noise Ratio: A Robust
    Distance Metric for Deep Metric Learning", Eq. 4): ``d(a, b) = Var(b - a) / Var(a)``.

    The anchor ``a`` is the signal, the difference ``b - a`` the noise; variances are taken over
    the feature dimensions (unbiased, as ``torch.var``). The distance is not symmetric. Scaling
    both embeddings by the same factor leaves it unchanged.

    With centred vectors ``a_c = a - mean(a)`` the distance is ``||b_c - a_c||^2 / ||a_c||^2``,
    which is how the matrix is computed (no ``(M, N, D)`` tensor).

    Args:
        normalize_embeddings: L2-normalise first (as PML does by default).
        eps: an anchor whose variance is below ``eps`` has no signal; the distance would divide by
            (almost) zero, so :meth:`forward` raises ``ValueError`` naming the rows.
    """

    def __init__(self, normalize_embeddings: bool = True, eps: float = 1e-12) -> None:
        super().__init__(normalize_embeddings)
        check_positive("eps", eps)
        self.eps = eps

    def _check_signal(self, variance: Tensor) -> None:
        flat = (variance < self.eps).nonzero().flatten()
        if flat.numel():
            raise ValueError(
                f"SNR distance: {flat.numel()} anchor rows have variance < eps={self.eps} (no signal; "
                f"first rows {flat[:5].tolist()}); a constant embedding has no SNR distance"
            )

    @staticmethod
    def _check_dimensions(embeddings: Tensor) -> None:
        if embeddings.shape[1] < 2:
            raise ValueError("the SNR distance needs embeddings with at least 2 dimensions")

    def _matrix(self, query: Tensor, reference: Tensor) -> Tensor:
        # ||b_c - a_c||^2 / ||a_c||^2: the 1/(D-1) of both variances cancels.
        self._check_dimensions(query)
        q = query - query.mean(dim=1, keepdim=True)
        q_squared = q.pow(2).sum(1)
        self._check_signal(q_squared / (query.shape[1] - 1))
        if reference is query:  # the batch against itself: reuse the centred rows
            r, r_squared = q, q_squared
        else:
            r = reference - reference.mean(dim=1, keepdim=True)
            r_squared = r.pow(2).sum(1)
        noise = (q_squared.unsqueeze(1) - 2.0 * q @ r.T + r_squared.unsqueeze(0)).clamp_min(0.0)
        return noise / q_squared.unsqueeze(1)

    def _paired(self, first: Tensor, second: Tensor) -> Tensor:
        self._check_dimensions(first)
        variance = first.var(dim=1)
        self._check_signal(variance)
        return (second - first).var(dim=1) / variance

    def extra_repr(self) -> str:
        return f"normalize_embeddings={self.normalize_embeddings}, eps={self.eps}"


class PrecomputedSimilarity(Distance):
    """A "distance" whose input already is the ``(M, N)`` similarity matrix (row i: anchor i).

    Lets a loss be evaluated on similarities chosen by hand, so that its gradient with respect to
    one similarity — the pair's weight in the general pair weighting of Wang et al. (CVPR 2019,
    Sec. 3) — can be read off with autograd (:func:`dmlkit.losses.pair_based.pair_weight`).
    """

    is_similarity = True

    def __init__(self) -> None:
        super().__init__(normalize_embeddings=False)

    def _matrix(self, query: Tensor, reference: Tensor) -> Tensor:
        return query


def snr_distance(
    anchors: Tensor, others: Tensor | None = None, *, normalize_embeddings: bool = False, eps: float = 1e-12
) -> Tensor:
    """The ``(M, N)`` SNR distances ``d[i, j] = Var(others[j] - anchors[i]) / Var(anchors[i])``
    (Yuan et al., CVPR 2019, the SNR distance of Sec. 3); ``others`` defaults to ``anchors``.

    The functional form of :class:`SNRDistance`. Unlike the class (and PML) it does **not**
    L2-normalise by default: it is the plain formula; pass ``normalize_embeddings=True`` for PML's
    convention (on unit-norm rows both give the same numbers). Row ``i`` is the signal, so
    ``d[i, j] != d[j, i]`` in general. An anchor whose variance is below ``eps`` raises
    ``ValueError`` (its distance to anything would be a division by zero).
    """
    return SNRDistance(normalize_embeddings=normalize_embeddings, eps=eps)(anchors, others)


def snr_ranking_embeddings(embeddings: Tensor, normalize_embeddings: bool = True) -> Tensor:
    """Rows transformed so that Euclidean distance ranks neighbours as the SNR distance does.

    ``d_SNR(a, b) = ||b_c - a_c||^2 / ||a_c||^2`` with ``x_c = x - mean(x)`` (centred over the
    features). For a fixed query ``a`` the denominator is a constant, so ranking the references
    ``b`` by ``d_SNR(a, b)`` is ranking them by the Euclidean distance ``||b_c - a_c||``. This
    returns ``x_c`` (after L2 normalisation when ``normalize_embeddings``, PML's and
    :class:`SNRDistance`'s default), so ``dmlkit.evaluate.retrieval_metrics(snr_ranking_embeddings(e),
    labels, distance="euclidean")`` gives the retrieval metrics under SNR ranking. Only the ranking
    of each query's neighbours is preserved, not the distance values (and not symmetry).
    """
    check_embeddings(embeddings)
    x = F.normalize(embeddings, dim=1) if normalize_embeddings else embeddings
    return x - x.mean(dim=1, keepdim=True)


#: The kit's distance names, one meaning each wherever a name is accepted (retrieval metrics,
#: k-NN, UMAP, few-shot heads, AP losses): ``"cosine"`` — cosine similarity (vectors
#: L2-normalised first); ``"euclidean"`` and ``"squared_euclidean"`` — on the vectors as given;
#: ``"snr"`` — Yuan et al.'s SNR distance on L2-normalised vectors (PML's convention). For
#: Euclidean distances of normalised vectors (PML's ``LpDistance()`` default) pass the object
#: ``EuclideanDistance()``.
DISTANCE_NAMES = ("cosine", "euclidean", "squared_euclidean", "snr")


def get_distance(name: str | Distance) -> Distance:
    """The :class:`Distance` of a name of :data:`DISTANCE_NAMES` (a :class:`Distance` is returned as it is)."""
    if isinstance(name, Distance):
        return name
    table = {
        "cosine": lambda: CosineSimilarity(),
        "euclidean": lambda: EuclideanDistance(normalize_embeddings=False),
        "squared_euclidean": lambda: EuclideanDistance(normalize_embeddings=False, squared=True),
        "snr": lambda: SNRDistance(),
    }
    if name not in table:
        raise ValueError(f"unknown distance {name!r}; choose one of {list(DISTANCE_NAMES)}")
    return table[name]()


class DistanceModule(nn.Module):
    """A module computed on a :class:`Distance` (a loss, a miner): holds it as ``self.distance``,
    :meth:`default_distance` when none is given, and refuses anything that is not a
    :class:`Distance`."""

    def __init__(self, distance: Distance | None = None) -> None:
        super().__init__()
        if distance is None:
            distance = self.default_distance()
        if not isinstance(distance, Distance):
            raise ValueError(f"distance must be a dmlkit.distances.Distance, got {type(distance).__name__}")
        self.distance = distance

    def default_distance(self) -> Distance:
        return EuclideanDistance()
