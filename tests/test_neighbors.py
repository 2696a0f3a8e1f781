"""Tests for dmlkit.neighbors: the chunked k-nearest-neighbour engine and exact_knn.

Reference: a plain loop that sorts every row's candidates in Python by (key, index), i.e. a stable
sort with ties to the lower index, on integer data where every key is exact and ties abound.
"""

from __future__ import annotations

import pytest
import torch

from dmlkit.neighbors import exact_knn, knn_by_key, row_chunks


def tied_points():
    """Integer points with exact duplicates (rows 0-5 again at 12-17) and many equidistant pairs."""
    g = torch.Generator().manual_seed(3)
    base = torch.randint(-2, 3, (12, 3), generator=g).double()
    return torch.cat([base, base[:6], torch.zeros(2, 3)])


def squared_euclidean(block, x):
    """Squared Euclidean distances, exact for small integer coordinates."""
    return (block[:, None, :] - x[None, :, :]).pow(2).sum(-1)


def loop_knn(x, k, include_self):
    """For each row: the other rows sorted by (squared distance, index), the row itself first or left out."""
    indices, distances = [], []
    for i in range(x.shape[0]):
        key = squared_euclidean(x[i : i + 1], x)[0].tolist()
        others = sorted((j for j in range(x.shape[0]) if j != i), key=lambda j: (key[j], j))
        order = ([i] if include_self else []) + others
        indices.append(order[:k])
        distances.append([0.0 if j == i else key[j] for j in order[:k]])
    return torch.tensor(indices), torch.tensor(distances, dtype=x.dtype)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 1, 4, 7, 100])
def test_engine_matches_a_stable_loop_on_ties(include_self, chunk_size):
    x = tied_points()
    n = x.shape[0]
    for k in (1, 3, 8, n if include_self else n - 1):
        idx, d = knn_by_key(
            x, k, lambda block, rows: squared_euclidean(block, x), include_self=include_self, chunk_size=chunk_size
        )
        ref_idx, ref_d = loop_knn(x, k, include_self)
        assert torch.equal(idx, ref_idx)
        assert torch.equal(d, ref_d)
    # duplicates: row 12 repeats row 0, yet with include_self each is its own first neighbour
    idx, _ = knn_by_key(x, 2, lambda block, rows: squared_euclidean(block, x), include_self=include_self)
    if include_self:
        assert idx[0].tolist() == [0, 12] and idx[12].tolist() == [12, 0]
    else:
        assert idx[0, 0] == 12 and idx[12, 0] == 0


def test_engine_passes_the_global_rows_and_evaluates_only_the_kept_distances():
    x = tied_points()
    seen_rows, seen_shapes = [], []

    def key(block, rows):
        seen_rows.append(rows.tolist())
        assert torch.equal(block, x[rows])
        return squared_euclidean(block, x)

    def distances(block, indices):
        seen_shapes.append(tuple(indices.shape))
        return squared_euclidean(block, x).gather(1, indices).sqrt() - 0.5  # the clamp at 0 shows

    idx, d = knn_by_key(x, 4, key, include_self=True, chunk_size=8, distances=distances)
    assert seen_rows == [list(range(0, 8)), list(range(8, 16)), list(range(16, 20))]
    assert seen_shapes == [(8, 4), (8, 4), (4, 4)]
    ref_idx, ref_d = loop_knn(x, 4, True)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(d, (ref_d.sqrt() - 0.5).clamp_min(0.0).index_fill(1, torch.tensor([0]), 0.0))


def test_exact_knn_is_the_engine_with_the_distance_as_key():
    x = tied_points().float()
    for include_self in (True, False):
        idx, d = exact_knn(x, 5, distance="euclidean", include_self=include_self, chunk_size=3)
        ref_idx, ref_d = loop_knn(x.double(), 5, include_self)
        assert torch.equal(idx, ref_idx)
        assert torch.equal(d, ref_d.float().sqrt())
        assert d.dtype == torch.float32
    # cosine: parallel rows tie at distance ~0 and keep the index order
    y = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    idx, d = exact_knn(y, 3, distance="cosine", include_self=False)
    assert idx[0].tolist() == [1, 3, 2] and idx[3].tolist() == [0, 1, 2]


def test_row_chunks_cover_the_rows():
    assert list(row_chunks(10, 4)) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert list(row_chunks(3, 5)) == [slice(0, 3)]
    assert list(row_chunks(0, 5)) == []


def test_engine_validation():
    x = tied_points()
    with pytest.raises(ValueError, match="neighbours impossible"):
        knn_by_key(x, 20, lambda block, rows: squared_euclidean(block, x), include_self=False)
    with pytest.raises(ValueError, match="neighbours impossible"):
        knn_by_key(x, 0, lambda block, rows: squared_euclidean(block, x))
    with pytest.raises(ValueError, match="ranking_key must return"):
        knn_by_key(x, 2, lambda block, rows: squared_euclidean(block, x)[:, :3])
    with pytest.raises(ValueError, match="distances must return"):
        knn_by_key(x, 2, lambda block, rows: squared_euclidean(block, x), distances=lambda block, idx: idx[:, :1])
