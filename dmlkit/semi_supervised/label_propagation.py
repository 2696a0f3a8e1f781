"""Label propagation on the k-NN graph of embeddings (Iscen et al., CVPR 2019).

Iscen, Tolias, Avrithis & Chum, "Label Propagation for Deep Semi-supervised Learning": the
embeddings of all n training images, labelled and unlabelled, define a graph; the few labels
diffuse along it, and the network is then trained on the labels it gives, each weighted by how
certain it is. In the paper's notation (Sec. 3.2):

- affinity (Eq. 9): ``a_ij = [v_iᵀ v_j]₊^γ`` if ``i ≠ j`` and ``v_j`` is among the k nearest
  neighbours of ``v_i``, else 0; ``W = A + Aᵀ``, and ``𝒲 = D^{-1/2} W D^{-1/2}`` with
  ``D = diag(W 1)``;
- diffusion (Eq. 10): solve ``(I − α 𝒲) Z = Y`` by conjugate gradient, where ``Y`` has a 1 at
  ``(i, c)`` for every labelled image ``i`` of class ``c``;
- pseudo-labels (Eq. 11): ``ŷ_i = argmax_j z_ij``;
- certainty (Eq. 12): ``ω_i = 1 − H(ẑ_i) / log c``, with ``ẑ_i`` the row ``z_i`` normalised to
  sum 1 (labelled images keep ``ω_i = 1``);
- class balance: ``ζ_j = (|L_j| + |U_j|)^{-1}``, the inverse number of images labelled or
  pseudo-labelled ``j``.

The paper's defaults are k = 50, γ = 3 and α = 0.99; the authors' code runs at most 20
conjugate-gradient iterations with a tolerance of 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dmlkit.checks import check_embeddings, check_int, check_positive, check_probability
from dmlkit.neighbors import exact_knn

__all__ = [
    "LabelPropagation",
    "knn_affinity",
    "normalised_affinity",
    "conjugate_gradient",
    "propagate_labels",
]


def knn_affinity(embeddings: Tensor, k: int = 50, gamma: float = 3.0) -> Tensor:
    """The symmetric affinity ``W = A + Aᵀ`` of Eq. (9) as a sparse COO ``(n, n)`` tensor.

    ``a_ij = max(cos(v_i, v_j), 0)^γ`` for the ``k`` nearest neighbours ``j ≠ i`` of ``i`` (cosine
    similarity of the L2-normalised embeddings), 0 elsewhere.
    """
    check_embeddings(embeddings)
    n = embeddings.shape[0]
    k = check_int("k", k, minimum=1)
    if k > n - 1:
        raise ValueError(f"k={k} neighbours need at least {k + 1} embeddings, got {n}")
    gamma = check_positive("gamma", gamma)
    indices, distances = exact_knn(embeddings, k, distance="cosine", include_self=False)
    values = (1.0 - distances).clamp_min(0.0).pow(gamma).double()
    rows = torch.arange(n).repeat_interleave(k)
    a = torch.sparse_coo_tensor(
        torch.stack([rows, indices.reshape(-1).cpu()]), values.reshape(-1).cpu(), (n, n), check_invariants=True
    )
    return (a + a.t()).coalesce()


def normalised_affinity(w: Tensor) -> Tensor:
    """``D^{-1/2} W D^{-1/2}`` with ``D = diag(W 1)`` (Eq. 9); rows of degree 0 stay 0."""
    w = w.coalesce()
    degree = torch.sparse.sum(w, dim=1).to_dense()
    scale = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))
    rows, cols = w.indices()
    return torch.sparse_coo_tensor(
        w.indices(), w.values() * scale[rows] * scale[cols], w.shape, check_invariants=True
    ).coalesce()


def conjugate_gradient(matvec, b: Tensor, max_iterations: int = 20, tolerance: float = 1e-6) -> tuple[Tensor, int]:
    """Solve ``A X = B`` for a symmetric positive-definite ``A`` given as ``matvec(X) = A X``.

    Every column of ``B`` ``(n, c)`` is its own conjugate-gradient run (Hestenes & Stiefel), all
    advanced together; a column stops changing once its residual norm is below ``tolerance``
    times the norm of its right-hand side. Returns ``(X, iterations run)``.
    """
    max_iterations = check_int("max_iterations", max_iterations, minimum=1)
    if b.dim() == 1:
        x, iterations = conjugate_gradient(matvec, b[:, None], max_iterations, tolerance)
        return x[:, 0], iterations
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = (r * r).sum(0)
    threshold = (tolerance * b.norm(dim=0)) ** 2
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        active = rr > threshold
        if not active.any():
            iterations -= 1
            break
        ap = matvec(p)
        pap = (p * ap).sum(0)
        alpha = torch.where(active & (pap > 0), rr / torch.where(pap > 0, pap, torch.ones_like(pap)), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(0)
        beta = torch.where(active, rr_new / torch.where(rr > 0, rr, torch.ones_like(rr)), 0.0)
        p = torch.where(active, r + beta * p, p)
        rr = torch.where(active, rr_new, rr)
    return x, iterations


@dataclass
class LabelPropagation:
    """What :func:`propagate_labels` found for every training image.

    Attributes:
        pseudo_labels: ``ŷ_i`` (Eq. 11), the given label for labelled images; ``(n,)``.
        certainty: ``ω_i`` (Eq. 12), 1 for labelled images, 0 where no label reached the image.
        class_weights: ``ζ_j`` per class ``(c,)``; 0 for a class nobody carries.
        scores: ``Z`` ``(n, c)``, the solution of Eq. (10).
        labelled: mask of the labelled images.
        iterations: conjugate-gradient iterations run.
    """

    pseudo_labels: Tensor
    certainty: Tensor
    class_weights: Tensor
    scores: Tensor
    labelled: Tensor
    iterations: int

    def weights(self) -> Tensor:
        """The loss weight of each image, ``ω_i ζ_{ŷ_i}`` (Eq. 13)."""
        return self.certainty * self.class_weights[self.pseudo_labels]

    def accuracy(self, true_labels: Tensor) -> float:
        """Share of the *unlabelled* images whose pseudo-label is their true label."""
        unlabelled = ~self.labelled
        if not unlabelled.any():
            return float("nan")
        return float(
            (self.pseudo_labels[unlabelled] == true_labels.to(self.pseudo_labels.device)[unlabelled]).double().mean()
        )


def propagate_labels(
    embeddings: Tensor,
    labels: Tensor,
    labelled: Tensor,
    num_classes: int,
    k: int = 50,
    gamma: float = 3.0,
    alpha: float = 0.99,
    max_iterations: int = 20,
    tolerance: float = 1e-6,
) -> LabelPropagation:
    """Iscen et al.'s label propagation (Eq. 9–12) from the labelled images to all of them.

    Args:
        embeddings: ``(n, d)`` embeddings of every training image.
        labels: ``(n,)`` class of each image; only the entries where ``labelled`` is true are read.
        labelled: ``(n,)`` boolean mask of the images whose label may be used.
        num_classes: c.
        k, gamma, alpha: the graph's neighbours, the affinity's power and the diffusion's α.
        max_iterations, tolerance: of the conjugate gradient.
    """
    check_embeddings(embeddings)
    n = embeddings.shape[0]
    labelled = torch.as_tensor(labelled).to(torch.bool).cpu()
    labels = torch.as_tensor(labels).long().cpu()
    if labelled.shape != (n,) or labels.shape != (n,):
        raise ValueError(
            f"labels and labelled must have one entry per embedding ({n}), got shapes "
            f"{tuple(labels.shape)} and {tuple(labelled.shape)}"
        )
    num_classes = check_int("num_classes", num_classes, minimum=2)
    if not labelled.any():
        raise ValueError("no labelled image: label propagation needs at least one label")
    given = labels[labelled]
    if given.min() < 0 or given.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{int(given.min())}, {int(given.max())}]")
    alpha = check_probability("alpha", alpha)
    if alpha == 1.0:
        raise ValueError("alpha must be below 1: I − 𝒲 is singular")

    w = normalised_affinity(knn_affinity(embeddings, k, gamma))
    y = torch.zeros(n, num_classes, dtype=torch.float64)
    y[labelled.nonzero().flatten(), given] = 1.0

    def matvec(x: Tensor) -> Tensor:
        return x - alpha * torch.sparse.mm(w, x)

    z, iterations = conjugate_gradient(matvec, y, max_iterations, tolerance)
    z = z.clamp_min(0.0)  # (I − α𝒲)^{-1} is non-negative; an unfinished solve may leave tiny negatives
    mass = z.sum(1)
    reached = mass > 0
    z_hat = torch.where(
        reached[:, None], z / torch.where(reached, mass, torch.ones_like(mass))[:, None], 1.0 / num_classes
    )
    entropy = -(z_hat * torch.log(z_hat.clamp_min(1e-300))).sum(1)
    certainty = torch.where(reached, 1.0 - entropy / math.log(num_classes), torch.zeros_like(entropy)).clamp(0.0, 1.0)
    pseudo = z.argmax(1)
    pseudo[labelled] = given
    certainty[labelled] = 1.0
    carried = reached | labelled  # an image no label reached carries no class
    counts = torch.bincount(pseudo[carried], minlength=num_classes).double()
    class_weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1.0), torch.zeros_like(counts))
    return LabelPropagation(
        pseudo_labels=pseudo,
        certainty=certainty.float(),
        class_weights=class_weights.float(),
        scores=z.float(),
        labelled=labelled,
        iterations=iterations,
    )
