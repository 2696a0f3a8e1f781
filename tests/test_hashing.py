"""Binary codes: binarisation, the tanh-relaxed hashing head, sign projections, Hamming distance
and Hamming retrieval metrics — against plain loops, including the handling of ties, and against
dmlkit.evaluate.retrieval_metrics (cosine on -1/+1 codes ranks by Hamming distance)."""

from __future__ import annotations

import pytest
import torch

from dmlkit.evaluate import retrieval_metrics
from dmlkit.hashing import (
    HashHead,
    binarize,
    fit_sign_projection,
    hamming_distance,
    hamming_retrieval_metrics,
)
from tests._references import metrics_from_ranked_relevance


def random_codes(rows: int, bits: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(rows, bits, generator=generator) < 0.5, -1.0, 1.0)


def random_labels(rows: int, classes: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed + 100)
    return torch.randint(classes, (rows,), generator=generator)


def loop_hamming(x: torch.Tensor, y: torch.Tensor) -> int:
    return sum(int(a != b) for a, b in zip(x.tolist(), y.tolist()))


def loop_metrics(codes, labels, ks=(1, 2, 4, 8), ties="index"):
    """Rank every other item by (Hamming distance, tie rule, index), one query at a time."""
    n = len(labels)
    labels = labels.tolist()
    rankings = []
    for q in range(n):

        def key(j, q=q):
            same = labels[j] == labels[q]
            tie = {"index": 0, "pessimistic": int(same), "optimistic": int(not same)}[ties]
            return (loop_hamming(codes[q], codes[j]), tie, j)

        ranked = sorted((j for j in range(n) if j != q), key=key)
        rankings.append([labels[j] == labels[q] for j in ranked])
    return metrics_from_ranked_relevance(rankings, ks)


def assert_metrics_close(a: dict, b: dict, tol: float = 1e-12) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == pytest.approx(b[name], abs=tol), name


# ---------------------------------------------------------------------------------------------
# Binarisation and the hashing head
# ---------------------------------------------------------------------------------------------


def test_binarize() -> None:
    x = torch.tensor([[-2.0, 0.0, 3.0, -0.0, 1e-9]], dtype=torch.float64)
    codes = binarize(x)
    assert codes.dtype == torch.float64
    assert codes.tolist() == [[-1.0, 1.0, 1.0, 1.0, 1.0]]  # sign(0) = +1
    assert binarize(torch.tensor([[-3, 4]])).dtype == torch.float32
    with pytest.raises(TypeError):
        binarize([1.0, -1.0])


def test_hash_head_relaxed_in_training_binary_in_eval() -> None:
    torch.manual_seed(0)
    head = HashHead(8, 16, scale=2.0)
    x = torch.randn(5, 8)
    relaxed = head(x)
    assert relaxed.shape == (5, 16) and bool((relaxed.abs() < 1).all())
    relaxed.sum().backward()
    assert head.linear.weight.grad is not None and torch.isfinite(head.linear.weight.grad).all()
    head.eval()
    with torch.no_grad():
        codes = head(x)
        assert torch.equal(codes, binarize(head.linear(x)))
        # a steep tanh approaches the codes
        head.scale = 1e4
        head.train()
        assert torch.allclose(head(x), codes, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_features": 0, "num_bits": 8},
        {"in_features": 8, "num_bits": 0},
        {"in_features": 8, "num_bits": 4.0},
        {"in_features": 8, "num_bits": 8, "scale": 0.0},
        {"in_features": 8, "num_bits": 8, "scale": float("nan")},
    ],
)
def test_hash_head_invalid_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        HashHead(**kwargs)


# ---------------------------------------------------------------------------------------------
# Hamming distance
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 7, 16, 64])
def test_hamming_distance_equals_loop(bits: int) -> None:
    x, y = random_codes(6, bits, seed=1), random_codes(5, bits, seed=2)
    matrix = hamming_distance(x, y)
    assert matrix.dtype == torch.int64 and matrix.shape == (6, 5)
    expected = torch.tensor([[loop_hamming(a, b) for b in y] for a in x])
    assert torch.equal(matrix, expected)
    square = hamming_distance(x)
    assert torch.equal(square, square.T) and bool((square.diagonal() == 0).all())


def test_cosine_of_codes_is_an_affine_map_of_hamming() -> None:
    codes = random_codes(20, 32, seed=3)
    cosine = torch.nn.functional.normalize(codes, dim=1) @ torch.nn.functional.normalize(codes, dim=1).T
    torch.testing.assert_close(cosine, 1 - 2 * hamming_distance(codes).float() / 32)


def test_hamming_distance_invalid_codes() -> None:
    with pytest.raises(ValueError, match="-1 and \\+1"):
        hamming_distance(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="-1 and \\+1"):
        hamming_distance(torch.tensor([[0.5, -1.0]]))
    with pytest.raises(ValueError, match="bits"):
        hamming_distance(random_codes(3, 8), random_codes(3, 9))
    with pytest.raises(ValueError, match="2-D"):
        hamming_distance(torch.ones(8))


# ---------------------------------------------------------------------------------------------
# Hamming retrieval metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", ["index", "pessimistic", "optimistic"])
@pytest.mark.parametrize("bits,classes,seed", [(4, 5, 0), (8, 6, 1), (16, 9, 2)])
def test_metrics_equal_loop_with_ties(bits, classes, seed, ties) -> None:
    codes, labels = random_codes(45, bits, seed), random_labels(45, classes, seed)
    labels[0] = 99  # a class with a single item: not a query
    ours = hamming_retrieval_metrics(codes, labels, ties=ties)
    assert_metrics_close(ours, loop_metrics(codes, labels, ties=ties))
    # the same with tiny chunks
    assert_metrics_close(ours, hamming_retrieval_metrics(codes, labels, ties=ties, chunk_size=4))


@pytest.mark.parametrize("bits,seed", [(4, 3), (8, 4), (16, 5), (32, 6)])
def test_tie_rules_bracket_every_order(bits, seed) -> None:
    codes, labels = random_codes(80, bits, seed), random_labels(80, 8, seed)
    low = hamming_retrieval_metrics(codes, labels, ties="pessimistic")
    by_index = hamming_retrieval_metrics(codes, labels, ties="index")
    high = hamming_retrieval_metrics(codes, labels, ties="optimistic")
    cosine = retrieval_metrics(codes, labels, distance="cosine")  # ties in torch.topk's order
    for name in low:
        for value in (by_index[name], cosine[name]):
            assert low[name] - 1e-12 <= value <= high[name] + 1e-12, name
    assert low["map@r"] < high["map@r"]  # short codes: ties matter


def test_without_ties_every_rule_and_cosine_agree() -> None:
    # thermometer codes: item i has its first p_i bits at -1, so H(i, j) = |p_i - p_j|; with
    # p_i = 2^i - 1 every query sees distinct distances
    positions = [0, 1, 3, 7, 15, 31]
    codes = torch.ones(len(positions), 32)
    for row, p in enumerate(positions):
        codes[row, :p] = -1.0
    labels = torch.tensor([0, 0, 1, 1, 0, 1])
    expected = loop_metrics(codes, labels, ks=(1, 2, 4))
    cosine = retrieval_metrics(codes, labels, ks=(1, 2, 4), distance="cosine")
    assert_metrics_close(cosine, expected)
    for ties in ("index", "pessimistic", "optimistic"):
        assert_metrics_close(hamming_retrieval_metrics(codes, labels, ks=(1, 2, 4), ties=ties), expected)


def test_metrics_on_separable_codes_are_perfect() -> None:
    prototypes = random_codes(4, 32, seed=9)
    labels = torch.arange(4).repeat_interleave(5)
    codes = prototypes[labels]  # every class one code: distance 0 inside, > 0 across
    result = hamming_retrieval_metrics(codes, labels, ties="pessimistic")
    assert all(value == pytest.approx(1.0) for value in result.values())


def test_metrics_invalid_arguments() -> None:
    codes, labels = random_codes(10, 8), random_labels(10, 3)
    with pytest.raises(ValueError, match="ties"):
        hamming_retrieval_metrics(codes, labels, ties="random")
    with pytest.raises(ValueError, match="k"):
        hamming_retrieval_metrics(codes, labels, ks=(0,))
    with pytest.raises(ValueError, match="k"):
        hamming_retrieval_metrics(codes, labels, ks=(10,))
    with pytest.raises(ValueError, match="chunk_size"):
        hamming_retrieval_metrics(codes, labels, chunk_size=0)
    with pytest.raises(ValueError, match="nothing to retrieve"):
        hamming_retrieval_metrics(codes, torch.arange(10))
    with pytest.raises(ValueError, match="-1 and"):
        hamming_retrieval_metrics(codes * 0.5, labels)
    with pytest.raises(ValueError, match="batch size"):
        hamming_retrieval_metrics(codes, labels[:-1])


# ---------------------------------------------------------------------------------------------
# Sign projections
# ---------------------------------------------------------------------------------------------


def clustered(n_classes=12, per_class=10, dim=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=generator)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return centres[labels] + 0.3 * torch.randn(len(labels), dim, generator=generator), labels


@pytest.mark.parametrize("method", ["itq", "pca", "random"])
@pytest.mark.parametrize("preprocess", ["normalize", "snr", "none"])
@pytest.mark.parametrize("bits", [4, 16])
def test_projection_gives_codes(method, preprocess, bits) -> None:
    train, _ = clustered(seed=1)
    test, test_labels = clustered(seed=2)
    projection = fit_sign_projection(train, bits, method=method, preprocess=preprocess)
    codes = projection(test)
    assert codes.shape == (len(test), bits) and projection.num_bits == bits
    assert bool(((codes == 1) | (codes == -1)).all())
    again = fit_sign_projection(train, bits, method=method, preprocess=preprocess)(test)
    assert torch.equal(codes, again)  # seeded
    # held-out clusters (other centres): far above chance (9/119), whatever the code length
    assert hamming_retrieval_metrics(codes, test_labels)["recall@1"] > (0.25 if bits == 4 else 0.6)


def test_itq_lowers_the_quantisation_error() -> None:
    train, _ = clustered(n_classes=30, per_class=20, dim=16, seed=3)
    pca = fit_sign_projection(train, 16, method="pca")
    itq = fit_sign_projection(train, 16, method="itq")

    def error(projection):
        v = (torch.nn.functional.normalize(train.double(), dim=1) - projection.mean) @ projection.projection
        return (torch.sign(v) - v).square().sum().item()

    # ITQ minimises ||B - V R|| over rotations of the PCA data (same variance, better codes)
    assert error(itq) < error(pca)


def test_random_projection_may_be_longer_than_the_embedding() -> None:
    train, _ = clustered(dim=8)
    assert fit_sign_projection(train, 32, method="random")(train).shape == (len(train), 32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_bits": 0},
        {"num_bits": 17},  # PCA/ITQ: at most D bits
        {"num_bits": 8, "method": "lsh"},
        {"num_bits": 8, "preprocess": "centre"},
        {"num_bits": 8, "iterations": -1},
        {"num_bits": True},
    ],
)
def test_projection_invalid_arguments(kwargs) -> None:
    train, _ = clustered()
    with pytest.raises(ValueError):
        fit_sign_projection(train, **kwargs)


def test_projection_checks_the_dimension() -> None:
    train, _ = clustered(dim=16)
    projection = fit_sign_projection(train, 8)
    with pytest.raises(ValueError, match="16-d"):
        projection(torch.randn(4, 12))
