r"""Trees in the hyperbolic plane and in the Euclidean plane: constructions and distortion.

A tree's shortest-path metric cannot be embedded in the Euclidean plane without distortion once
the tree branches enough (a node's :math:`b^\ell` descendants at depth :math:`\ell` must all fit
within radius :math:`\ell` while staying apart, and a Euclidean disk's area grows only like
:math:`\ell^2`). The hyperbolic plane has room: a disk of radius :math:`\rho` has circumference
:math:`2\pi\sinh(\sqrt c\,\rho)/\sqrt c`, exponential in :math:`\rho`, like a tree. Sarkar (Graph
Drawing 2011, "Low Distortion Delaunay Embedding of Trees in Hyperbolic Plane") showed that every
tree embeds in the hyperbolic plane with distortion as close to 1 as wished, by a simple
construction: put the root at the origin, spread the children of every node evenly around it
(away from its parent) and make every edge a geodesic of length :math:`\tau`; the larger
:math:`\tau`, the lower the distortion. Sala, De Sa, Gu & Ré (ICML 2018, "Representation
Tradeoffs for Hyperbolic Embeddings") analyse this construction and its numerical cost.

- :func:`balanced_tree` and :func:`tree_distances` — a small tree and its path metric;
- :func:`sarkar_embedding` — the construction above in the Poincaré disk (here with even angular
  spacing, the simple version of Sarkar's construction);
- :func:`fit_euclidean` — a Euclidean embedding fitted by gradient descent to the same metric
  (the best-effort comparison: no construction for the plane does well);
- :func:`distortion` — worst-case and average distortion of an embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dmlkit.checks import check_curvature
from dmlkit.geometry.poincare import expmap, lambda_x, logmap

__all__ = ["balanced_tree", "tree_distances", "sarkar_embedding", "fit_euclidean", "distortion"]


def _check_parents(parents: Sequence[int]) -> list[int]:
    parents = [int(p) for p in parents]
    if not parents or parents[0] != -1:
        raise ValueError("parents must start with the root, whose parent is -1")
    for i, p in enumerate(parents[1:], start=1):
        if not 0 <= p < i:
            raise ValueError(f"node {i} has parent {p}: every node but the root needs a parent listed before it")
    return parents


def balanced_tree(branching: int, depth: int) -> list[int]:
    """The parent list of a complete tree (node 0 the root, nodes in breadth-first order).

    ``parents[i]`` is the parent of node ``i`` (``-1`` for the root); a tree with branching
    ``b`` and depth ``L`` has ``(b^(L+1) - 1) / (b - 1)`` nodes.
    """
    for name, value, low in (("branching", branching, 1), ("depth", depth, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    parents, frontier = [-1], [0]
    for _ in range(depth):
        next_frontier = []
        for node in frontier:
            for _ in range(branching):
                parents.append(node)
                next_frontier.append(len(parents) - 1)
        frontier = next_frontier
    return parents


def tree_distances(parents: Sequence[int]) -> Tensor:
    """The ``(n, n)`` shortest-path (hop) distances of the tree given by its parent list (float64)."""
    parents = _check_parents(parents)
    n = len(parents)
    depth = [0] * n
    for i in range(1, n):
        depth[i] = depth[parents[i]] + 1
    ancestors = []
    for i in range(n):
        chain = [i]
        while parents[chain[-1]] >= 0:
            chain.append(parents[chain[-1]])
        ancestors.append(chain)
    d = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        mine = set(ancestors[i])
        for j in range(i + 1, n):
            lca = next(a for a in ancestors[j] if a in mine)
            d[i, j] = d[j, i] = depth[i] + depth[j] - 2 * depth[lca]
    return d


def sarkar_embedding(parents: Sequence[int], edge_length: float, c: float = 1.0) -> Tensor:
    r"""Embed a tree in the Poincaré disk of curvature ``-c``: every edge a geodesic of length
    ``edge_length``, children spread evenly around their parent (Sarkar, GD 2011).

    The root sits at the origin and its ``m`` children at angles :math:`2\pi k/m`; a node whose
    parent lies in direction :math:`a` (at the node) places its ``m`` children at angles
    :math:`a + 2\pi(k+1)/(m+1)`. Angles at a point are measured in the disk's chart, which is
    conformal, so they are the hyperbolic angles. A child is
    ``expmap(x, edge_length * direction / lambda_x(x))``, a point at distance exactly
    ``edge_length``. Returns ``(n, 2)`` float64 points.

    Raises ``ValueError`` when a point reaches the boundary in float64 (depth × edge length ×
    sqrt(c) beyond about 30).
    """
    parents = _check_parents(parents)
    c = check_curvature(c)
    if c == 0:
        raise ValueError("sarkar_embedding needs c > 0 (in the plane, children of nearby nodes collide)")
    if not (isinstance(edge_length, (int, float)) and math.isfinite(edge_length) and edge_length > 0):
        raise ValueError(f"edge_length must be a positive number, got {edge_length!r}")
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(parents[1:], start=1):
        children[p].append(i)
    x = torch.zeros(n, 2, dtype=torch.float64)
    for node in range(n):  # breadth-first: parents are placed before their children
        kids = children[node]
        m = len(kids)
        if m == 0:
            continue
        if parents[node] < 0:
            angles = [2 * math.pi * k / m for k in range(m)]
        else:
            towards_parent = logmap(x[node], x[parents[node]], c=c)
            a = math.atan2(float(towards_parent[1]), float(towards_parent[0]))
            angles = [a + 2 * math.pi * (k + 1) / (m + 1) for k in range(m)]
        scale = edge_length / float(lambda_x(x[node], c=c))
        for angle, kid in zip(angles, kids):
            step = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64) * scale
            x[kid] = expmap(x[node], step, c=c)
    if bool((c * x.pow(2).sum(dim=1) >= 1.0).any()):
        raise ValueError(
            "points reached the boundary of the disk in float64: use a shorter edge_length or a "
            "smaller tree (Yu & De Sa, NeurIPS 2019, discuss this limit)"
        )
    return x


def distortion(embedded: Tensor, target: Tensor) -> dict[str, float]:
    r"""Worst-case and average distortion of an embedding's distances against a target metric.

    Over all pairs :math:`i < j`, with :math:`r_{ij} = d_{\text{emb}}(i,j) / d(i,j)`:

    - ``worst``: :math:`\max r / \min r` (1 for a perfect embedding up to scale; the
      multiplicative distortion of Sala et al., ICML 2018);
    - ``average``: :math:`\frac{1}{|\text{pairs}|}\sum |s\,r_{ij} - 1|` with the scale
      :math:`s = \sum r / \sum r^2` that minimises :math:`\sum (s r - 1)^2` (the mean relative
      error of the distances once the overall scale is fitted; 0 for a perfect embedding).

    Both are scale-free, so embeddings of different sizes and spaces can be compared.
    """
    for name, d in (("embedded", embedded), ("target", target)):
        if not isinstance(d, torch.Tensor) or d.dim() != 2 or d.shape[0] != d.shape[1]:
            raise ValueError(f"{name} must be a square distance matrix")
    if embedded.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(embedded.shape)} and {tuple(target.shape)}")
    n = target.shape[0]
    if n < 2:
        raise ValueError("need at least two points")
    iu = torch.triu_indices(n, n, 1)
    t = target.to(torch.float64)[iu[0], iu[1]]
    e = embedded.to(torch.float64)[iu[0], iu[1]]
    if bool((t <= 0).any()):
        raise ValueError("target distances between distinct points must be positive")
    r = e / t
    if bool((r <= 0).any()):
        return {"worst": math.inf, "average": float("nan")}
    s = r.sum() / (r * r).sum()
    return {"worst": float(r.max() / r.min()), "average": float((s * r - 1).abs().mean())}


def fit_euclidean(target: Tensor, dim: int = 2, steps: int = 1000, lr: float = 0.05, seed: int = 0) -> Tensor:
    r"""Points of :math:`\mathbb R^{dim}` whose distances fit ``target`` up to scale.

    Minimises the variance over pairs of :math:`\log(\|x_i - x_j\| / d_{ij})` (scale-free, so
    only the shape is fitted) with Adam from a small random start seeded by ``seed``, in float64.
    A best effort, not a guaranteed optimum. Returns ``(n, dim)`` points.
    """
    if not isinstance(target, torch.Tensor) or target.dim() != 2 or target.shape[0] != target.shape[1]:
        raise ValueError("target must be a square distance matrix")
    for name, value in (("dim", dim), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    n = target.shape[0]
    iu = torch.triu_indices(n, n, 1)
    log_target = target.to(torch.float64)[iu[0], iu[1]].log()
    generator = torch.Generator().manual_seed(int(seed))
    x = (0.1 * torch.randn(n, dim, generator=generator, dtype=torch.float64)).requires_grad_()
    optimiser = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        diff = x[iu[0]] - x[iu[1]]
        log_ratio = 0.5 * diff.pow(2).sum(dim=1).clamp_min(1e-24).log() - log_target
        loss = (log_ratio - log_ratio.mean()).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return x.detach()
