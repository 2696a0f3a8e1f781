"""Tests for dmlkit.geometry.trees: tree metric, Sarkar's construction, distortion, Euclidean fit."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from dmlkit.geometry import dist, dist_matrix
from dmlkit.geometry.trees import balanced_tree, distortion, fit_euclidean, sarkar_embedding, tree_distances


def test_balanced_tree_and_its_metric():
    parents = balanced_tree(2, 2)
    assert parents == [-1, 0, 0, 1, 1, 2, 2]
    d = tree_distances(parents)
    assert d[3, 4] == 2 and d[3, 5] == 4 and d[0, 6] == 2 and d[1, 2] == 2
    assert torch.equal(d, d.T) and torch.all(d.diagonal() == 0)
    assert len(balanced_tree(3, 3)) == 40
    with pytest.raises(ValueError, match="branching"):
        balanced_tree(0, 2)
    with pytest.raises(ValueError, match="parent"):
        tree_distances([-1, 2, 0])


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_sarkar_edges_are_geodesics_of_the_given_length(c):
    parents = balanced_tree(3, 3)
    x = sarkar_embedding(parents, edge_length=1.5, c=c)
    assert torch.equal(x[0], torch.zeros(2, dtype=torch.float64))
    child = torch.arange(1, len(parents))
    parent = torch.tensor(parents[1:])
    torch.testing.assert_close(dist(x[child], x[parent], c=c), torch.full((len(child),), 1.5, dtype=torch.float64))
    # children are spread evenly: the root's three children at 120 degrees
    angles = torch.atan2(x[1:4, 1], x[1:4, 0])
    torch.testing.assert_close(angles, torch.tensor([0.0, 2 * math.pi / 3, -2 * math.pi / 3], dtype=torch.float64))


def test_distortion_falls_towards_one_with_longer_edges():
    parents = balanced_tree(2, 4)
    target = tree_distances(parents)
    worst = [distortion(dist_matrix(sarkar_embedding(parents, tau), c=1.0), target)["worst"] for tau in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in itertools.pairwise(worst))
    assert worst[-1] < 1.1
    # the tree is a metric; its embedding in the plane by gradient descent is much worse
    euclid = fit_euclidean(target, steps=300)
    assert distortion(torch.cdist(euclid, euclid), target)["worst"] > 2 * worst[-1]
    with pytest.raises(ValueError, match="boundary"):
        sarkar_embedding(parents, edge_length=20.0)
    with pytest.raises(ValueError, match="c > 0"):
        sarkar_embedding(parents, edge_length=1.0, c=0.0)


def test_distortion_definitions():
    target = torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=torch.float64)
    assert distortion(3 * target, target) == pytest.approx({"worst": 1.0, "average": 0.0})
    squashed = torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)
    # ratios 1, 0.5, 1: worst 2; s = 2.5 / 2.25 = 10/9, errors 1/9, 4/9, 1/9 -> mean 2/9
    assert distortion(squashed, target) == pytest.approx({"worst": 2.0, "average": 2 / 9})
    collapsed = torch.zeros(3, 3, dtype=torch.float64)
    assert distortion(collapsed, target)["worst"] == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        distortion(target[:2, :2], target)
    with pytest.raises(ValueError, match="positive"):
        distortion(target, torch.zeros(3, 3))


def test_fit_euclidean_recovers_a_euclidean_metric():
    points = torch.tensor([[0.0, 0], [3, 0], [0, 4], [3, 4], [1, 1]], dtype=torch.float64)
    target = torch.cdist(points, points)
    fitted = fit_euclidean(target, steps=1500, lr=0.05, seed=1)
    assert distortion(torch.cdist(fitted, fitted), target)["worst"] < 1.01
