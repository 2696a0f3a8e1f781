"""Tests for dmlkit.geometry.hierarchy: prototypes, level radii and the permutation null."""

from __future__ import annotations

import math

import pytest
import torch

from dmlkit.geometry import dist0, einstein_midpoint, expmap0
from dmlkit.geometry.hierarchy import class_prototypes, hierarchy_radii

F64 = torch.float64


def tree_like(c, seed=0, groups=4, classes_per_group=5, images=6):
    """Images in the ball: each group a direction, each class a sub-direction of it."""
    g = torch.Generator().manual_seed(seed)
    dim = 8
    group_dirs = torch.nn.functional.normalize(torch.randn(groups, dim, generator=g, dtype=F64), dim=1)
    points, labels, names = [], [], []
    label = 0
    for gi in range(groups):
        for _ in range(classes_per_group):
            class_dir = torch.nn.functional.normalize(
                group_dirs[gi] + 0.4 * torch.randn(dim, generator=g, dtype=F64), dim=0
            )
            for _ in range(images):
                u = 2.0 * class_dir + 0.2 * torch.randn(dim, generator=g, dtype=F64)
                points.append(expmap0(u, c=c) if c else u)
                labels.append(label)
            names.append(f"group{gi}")
            label += 1
    return torch.stack(points), torch.tensor(labels), names


def test_class_prototypes_are_per_class_midpoints():
    x, labels, _ = tree_like(1.0)
    classes, protos = class_prototypes(x, labels, c=1.0)
    assert classes.tolist() == list(range(20))
    for k in (0, 7, 19):
        torch.testing.assert_close(protos[k], einstein_midpoint(x[labels == k], c=1.0), rtol=1e-12, atol=1e-12)


def test_euclidean_limit_is_means_and_twice_the_norm():
    x, labels, names = tree_like(0.0)
    result = hierarchy_radii(x, labels, names, c=0.0, num_permutations=5)
    means = torch.stack([x[labels == k].mean(0) for k in range(20)])
    assert result.image == pytest.approx(float(2 * x.norm(dim=1).mean()), rel=1e-12)
    assert result.classes == pytest.approx(float(2 * means.norm(dim=1).mean()), rel=1e-12)
    groups = torch.stack([means[5 * i : 5 * i + 5].mean(0) for i in range(4)])
    assert result.groups == pytest.approx(float(2 * groups.norm(dim=1).mean()), rel=1e-12)
    assert result.root == pytest.approx(float(2 * means.mean(0).norm()), rel=1e-12)


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_a_real_hierarchy_beats_random_groups(c):
    x, labels, names = tree_like(c)
    r = hierarchy_radii(x, labels, names, c=c, num_permutations=100, seed=1)
    assert r.image > r.classes > r.groups > r.root  # averaging shrinks
    assert r.groups > r.random_groups + 3 * r.random_groups_std
    assert r.p_value == pytest.approx(1 / 101)
    assert (r.num_classes, r.num_groups, r.num_permutations) == (20, 4, 100)
    assert r.image == pytest.approx(float(dist0(x, c=c).mean()))


def test_groups_unrelated_to_the_geometry_look_random():
    # shuffled group names: the p-value is uniform under the null, so over several shuffles its
    # mean is near 1/2 (sd of the mean of 10 uniforms: 0.09) and the real-minus-random gap small
    x, labels, names = tree_like(1.0)
    p_values, gaps = [], []
    for seed in range(10):
        order = torch.randperm(20, generator=torch.Generator().manual_seed(100 + seed)).tolist()
        r = hierarchy_radii(x, labels, [names[i] for i in order], c=1.0, num_permutations=50, seed=seed)
        p_values.append(r.p_value)
        gaps.append((r.groups - r.random_groups) / r.random_groups_std)
    assert 0.2 < sum(p_values) / 10 < 0.8
    assert abs(sum(gaps) / 10) < 1.0


def test_single_class_groups_are_left_out_and_errors():
    x, labels, names = tree_like(1.0, groups=2, classes_per_group=3)
    names = names[:5] + ["alone"]
    r = hierarchy_radii(x, labels, names, c=1.0, num_permutations=3)
    assert r.num_groups == 2 and r.num_classes == 6
    with pytest.raises(ValueError, match="groups has 3 entries"):
        hierarchy_radii(x, labels, names[:3], c=1.0)
    with pytest.raises(ValueError, match="two or more classes"):
        hierarchy_radii(x, labels, [str(i) for i in range(6)], c=1.0)
    with pytest.raises(ValueError, match="outside the Poincaré ball"):
        hierarchy_radii(x * 10, labels, names, c=1.0)
    with pytest.raises(ValueError, match="num_permutations"):
        hierarchy_radii(x, labels, names, c=1.0, num_permutations=0)
    with pytest.raises(ValueError, match="at least two classes"):
        hierarchy_radii(x[:3], labels[:3], names, c=1.0)
    with pytest.raises(ValueError, match="c must be"):
        hierarchy_radii(x, labels, names, c=-1.0)
    assert math.isfinite(r.p_value)


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_midpoint_centre_is_isometry_invariant(c):
    from dmlkit.geometry import mobius_add

    x, labels, names = tree_like(c, seed=4)
    shift = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.2, 0.0, -0.1, 0.1], dtype=F64)
    moved = mobius_add(shift.expand_as(x), x, c=c)  # an isometry (x + shift for c = 0)
    a = hierarchy_radii(x, labels, names, c=c, num_permutations=20, centre="midpoint")
    b = hierarchy_radii(moved, labels, names, c=c, num_permutations=20, centre="midpoint")
    for key, value in a.as_dict().items():
        assert getattr(b, key) == pytest.approx(value, abs=1e-9), key
    assert a.root == pytest.approx(0.0, abs=1e-9)
    # measured from the origin, the shift changes the radii
    assert hierarchy_radii(moved, labels, names, c=c, num_permutations=20).image != pytest.approx(
        hierarchy_radii(x, labels, names, c=c, num_permutations=20).image, abs=1e-3
    )
    if c == 0:  # the Euclidean limit: subtract the mean of the class means
        means = torch.stack([x[labels == k].mean(0) for k in range(20)])
        centred = x - means.mean(0)
        assert a.image == pytest.approx(float(2 * centred.norm(dim=1).mean()), rel=1e-12)
    with pytest.raises(ValueError, match="centre"):
        hierarchy_radii(x, labels, names, c=c, centre="middle")
