r"""Does an embedding place general groups nearer the origin? Radii along a class hierarchy.

Nickel & Kiela (NeurIPS 2017, "Poincaré Embeddings for Learning Hierarchical Representations")
observed that when a hierarchy is embedded in the Poincaré ball, general concepts settle near
the origin and specific ones near the boundary: the hyperbolic radius
:math:`d_c(0, x) = \frac{2}{\sqrt c}\operatorname{artanh}(\sqrt c\|x\|)` behaves like a depth.
A metric-learning model never sees the hierarchy and has no item that stands for a group, only
images. Following Khrulkov et al. (CVPR 2020, "Hyperbolic Image Embeddings"), a class is
summarised by the Einstein midpoint of its images (:func:`dmlkit.geometry.einstein_midpoint`)
and a group by the midpoint of its class prototypes, and the radii of the levels are compared.

**Averaging shrinks, in any geometry.** The midpoint of points that do not all lie in one
direction is nearer the origin than the points (in the Euclidean limit this is the triangle
inequality, :math:`\|\frac1n\sum x_i\| \le \frac1n\sum\|x_i\|`). So "groups lie nearer the origin
than classes, classes nearer than images" holds for almost any embedding and says nothing about
the hierarchy by itself. :func:`hierarchy_radii` therefore also reports the same radii for
*random* groups of the same sizes (the classes' group labels permuted): if the embedding knows
the hierarchy, the classes of one real group share a direction (a sub-tree, a cone from the
origin), their midpoint shrinks *less* than that of a random group, and the real groups lie
farther out than the random ones. The one-sided permutation p-value tests that.

**Where is the origin?** A loss that depends only on distances is invariant under the
isometries of the ball (Möbius translations move any point to the origin), so nothing forces a
model to centre its embeddings there; the head (:class:`dmlkit.geometry.HyperbolicProjection`)
is anchored at the origin only through ``exp_0`` and the clipping. When all embeddings share an
offset, that offset dominates every radius. ``centre="midpoint"`` therefore measures radii
from the midpoint of all class prototypes instead, after moving it to the origin by a Möbius
translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from dmlkit.checks import check_curvature, check_embeddings_and_labels
from dmlkit.geometry.poincare import dist0, einstein_midpoint, mobius_add

__all__ = ["HierarchyRadii", "class_prototypes", "hierarchy_radii"]


@dataclass(frozen=True)
class HierarchyRadii:
    """Mean hyperbolic radius :math:`d_c(0, \\cdot)` of each level (see :func:`hierarchy_radii`).

    Attributes:
        image: mean radius of the embeddings.
        classes: mean radius of the class prototypes (Einstein midpoints of a class's images).
        groups: mean radius of the group prototypes (midpoints of the class prototypes of a
            group, each class weighted equally), over groups with at least two classes.
        root: radius of the midpoint of all class prototypes.
        random_groups: mean over permutations of the mean group radius for random groups of the
            same sizes.
        random_groups_std: its standard deviation over the permutations.
        p_value: one-sided permutation p-value of "real groups lie farther out than random
            ones", ``(1 + #{random >= real}) / (1 + num_permutations)``.
        num_classes: classes present.
        num_groups: groups with at least two classes (those averaged in ``groups``).
        num_permutations: permutations drawn.
    """

    image: float
    classes: float
    groups: float
    root: float
    random_groups: float
    random_groups_std: float
    p_value: float
    num_classes: int
    num_groups: int
    num_permutations: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def class_prototypes(embeddings: Tensor, labels: Tensor, c: float) -> tuple[Tensor, Tensor]:
    """The classes present and their prototypes, the Einstein midpoints of their embeddings.

    Returns ``(classes (K,), prototypes (K, D))``; with ``c = 0`` the prototypes are the class
    means. Computed in float64.
    """
    check_embeddings_and_labels(embeddings, labels)
    c = check_curvature(c)
    x = embeddings.detach().to(torch.float64)
    classes, inverse = torch.unique(labels, return_inverse=True)
    weights = torch.zeros(classes.numel(), x.shape[0], dtype=x.dtype, device=x.device)
    weights[inverse, torch.arange(x.shape[0], device=x.device)] = 1.0
    return classes, einstein_midpoint(x, weights, c=c)


def _mean_group_radii(prototypes: Tensor, group_index: Tensor, multi: Tensor, c: float) -> Tensor:
    """Mean radius of the midpoints of the groups in ``multi`` (equal class weights), for each
    row of ``group_index`` (``(R, K)``: one grouping of the ``K`` classes per row); ``(R,)``."""
    one_hot = torch.nn.functional.one_hot(group_index, num_classes=int(group_index.max()) + 1)
    weights = one_hot.transpose(1, 2)[:, multi].to(prototypes.dtype)  # (R, groups, classes)
    rows, groups = weights.shape[:2]
    midpoints = einstein_midpoint(prototypes, weights.reshape(rows * groups, -1), c=c)
    return dist0(midpoints, c=c).reshape(rows, groups).mean(dim=1)


def hierarchy_radii(
    embeddings: Tensor,
    labels: Tensor,
    groups: Sequence[str],
    c: float,
    num_permutations: int = 200,
    seed: int = 0,
    centre: str = "origin",
) -> HierarchyRadii:
    r"""Mean hyperbolic radius of images, class prototypes, group prototypes and the root.

    Args:
        embeddings: ``(N, D)`` points of the Poincaré ball of curvature ``-c``.
        labels: ``(N,)`` non-negative class labels.
        groups: the group (e.g. the Unicode script) of every class, indexed by label:
            ``groups[label]``; only the classes present in ``labels`` are used.
        c: curvature parameter; ``c = 0`` gives Euclidean means and radii :math:`2\|x\|` (the
            Euclidean limit of :func:`dmlkit.geometry.dist0`).
        num_permutations: random regroupings for the null comparison (module docstring).
        seed: seed of the permutations.
        centre: ``"origin"`` measures radii from the origin of the ball, the point the
            embedding head is anchored at (``exp_0``, clipping in the tangent space at 0).
            ``"midpoint"`` first moves the root — the midpoint of all class prototypes — to the
            origin with the isometry :math:`x \mapsto (-m)\oplus_c x` (a Möbius translation;
            in the Euclidean limit, subtracting the mean), so radii are measured from the
            centre of the embeddings. Distance-based losses are invariant under isometries, so
            nothing forces a model to centre its embeddings at the origin; a shared offset then
            dominates every radius. The Einstein midpoint is covariant under Möbius translations
            (Ungar, 2008), so after the move the root is the origin (``root`` is 0 up to rounding).

    Raises:
        ValueError: a label without a group, fewer than two classes, or no group with at least
            two classes.
    """
    check_embeddings_and_labels(embeddings, labels)
    c = check_curvature(c)
    if isinstance(num_permutations, bool) or not isinstance(num_permutations, int) or num_permutations < 1:
        raise ValueError(f"num_permutations must be a positive integer, got {num_permutations!r}")
    if bool((labels < 0).any()):
        raise ValueError("labels must be non-negative (they index groups)")
    groups = list(groups)
    if int(labels.max()) >= len(groups):
        raise ValueError(f"groups has {len(groups)} entries but labels go up to {int(labels.max())}")
    if c > 0 and bool((c * embeddings.detach().double().pow(2).sum(dim=1) >= 1).any()):
        raise ValueError("embeddings lie on or outside the Poincaré ball of radius 1/sqrt(c)")
    if centre not in ("origin", "midpoint"):
        raise ValueError(f"centre must be 'origin' or 'midpoint', got {centre!r}")

    x = embeddings.detach().to(torch.float64)
    if centre == "midpoint":
        _, prototypes = class_prototypes(x, labels, c)
        root = einstein_midpoint(prototypes, c=c)
        x = mobius_add(-root.expand_as(x), x, c=c)
    classes, prototypes = class_prototypes(x, labels, c)
    if classes.numel() < 2:
        raise ValueError(f"need at least two classes, got {classes.numel()}")
    names = sorted({groups[int(k)] for k in classes})
    group_index = torch.tensor([names.index(groups[int(k)]) for k in classes])
    sizes = torch.bincount(group_index, minlength=len(names))
    multi = (sizes >= 2).nonzero().flatten()
    if multi.numel() == 0:
        raise ValueError("no group has two or more classes: there is nothing to average")

    real = float(_mean_group_radii(prototypes, group_index.unsqueeze(0), multi, c)[0])
    generator = torch.Generator().manual_seed(int(seed))
    shuffled = torch.stack(
        [group_index[torch.randperm(group_index.numel(), generator=generator)] for _ in range(num_permutations)]
    )
    null = _mean_group_radii(prototypes, shuffled, multi, c)
    return HierarchyRadii(
        image=float(dist0(x, c=c).mean()),
        classes=float(dist0(prototypes, c=c).mean()),
        groups=real,
        root=float(dist0(einstein_midpoint(prototypes, c=c), c=c)),
        random_groups=float(null.mean()),
        random_groups_std=float(null.std()) if num_permutations > 1 else 0.0,
        p_value=float((1 + (null >= real).sum()) / (1 + num_permutations)),
        num_classes=int(classes.numel()),
        num_groups=int(multi.numel()),
        num_permutations=num_permutations,
    )
