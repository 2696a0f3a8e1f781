"""Tests for dmlkit.evaluate: retrieval metrics against PML and brute force, NMI, subgroup gaps,
and embedding a dataset."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from dmlkit.data.base import TensorImageDataset
from dmlkit.evaluate import (
    embed,
    nmi,
    per_class_recall_at_1,
    retrieval_metrics,
    worst_class_gap,
)
from tests._references import metrics_from_ranked_relevance

# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def pml_metrics(embeddings: torch.Tensor, labels: torch.Tensor, distance: str) -> dict[str, float]:
    """PML's AccuracyCalculator, query set = reference set, mapped to dmlkit's key names."""
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    knn = CustomKNN(CosineSimilarity() if distance == "cosine" else LpDistance(normalize_embeddings=False))
    calculator = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
        k="max_bin_count",
        knn_func=knn,
        device=torch.device("cpu"),
    )
    result = calculator.get_accuracy(embeddings, labels, embeddings, labels, ref_includes_query=True)
    return {
        "recall@1": result["precision_at_1"],
        "map@r": result["mean_average_precision_at_r"],
        "r_precision": result["r_precision"],
    }


def labels_with_small_classes(generator: torch.Generator) -> torch.Tensor:
    """Classes of sizes 1, 1, 2, 2, 3 and more: singletons, pairs and larger classes, shuffled."""
    sizes = [1, 1, 2, 2, 2, 3, 5, 8, 13, 20, 1, 4]
    labels = torch.cat([torch.full((size,), label) for label, size in enumerate(sizes)])
    return labels[torch.randperm(len(labels), generator=generator)]


def with_duplicates(embeddings: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Overwrite a third of the rows with copies of other rows (exact ties at distance 0)."""
    embeddings = embeddings.clone()
    n = embeddings.shape[0]
    targets = torch.randperm(n, generator=generator)[: n // 3]
    sources = torch.randint(0, n, (n // 3,), generator=generator)
    embeddings[targets] = embeddings[sources]
    return embeddings


def brute_force(embeddings: torch.Tensor, labels: torch.Tensor, ks, distance: str) -> dict[str, float]:
    """Recall@k, MAP@R and R-Precision from their definitions, one query at a time (float64)."""
    x = embeddings.double()
    if distance == "cosine":
        x = F.normalize(x, dim=1)
    rankings = []
    for query in range(len(x)):
        others = torch.tensor([i for i in range(len(x)) if i != query])
        if distance == "cosine":
            order = torch.argsort(-(x[others] @ x[query]), stable=True)
        else:
            order = torch.argsort((x[others] - x[query]).norm(dim=1), stable=True)
        rankings.append((labels[others][order] == labels[query]).tolist())
    return metrics_from_ranked_relevance(rankings, ks)


def assert_close(ours: dict[str, float], reference: dict[str, float], tol: float = 1e-6) -> None:
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=tol), (key, ours[key], value)


# --------------------------------------------------------------------------------------------------
# A worked example small enough to check by hand
# --------------------------------------------------------------------------------------------------

# 1-D points, Euclidean distance. Class 0 at 0, 1.2, 3.5; class 1 at 2, 10; a singleton at 100.
# Neighbour orders (query excluded):  0 -> 1.2(c0) 2(c1) 3.5(c0) | 1.2 -> 2(c1) 0(c0) 3.5(c0)
# 3.5 -> 2(c1) 1.2(c0) 0(c0) | 2 -> 1.2 3.5 0 10(c1) | 10 -> 3.5 2(c1). The singleton is no query.
# AP@R: 1/2, 1/4, 1/4, 0, 0 -> MAP@R 0.2; R-Precision: 1/2, 1/2, 1/2, 0, 0 -> 0.3;
# hit@1 only for the query at 0 -> Recall@1 0.2; Recall@2 misses only the query at 2 -> 0.8.
WORKED_POINTS = torch.tensor([[0.0], [1.2], [3.5], [2.0], [10.0], [100.0]])
WORKED_LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def test_worked_example_by_hand():
    result = retrieval_metrics(WORKED_POINTS, WORKED_LABELS, ks=(1, 2, 4), distance="euclidean")
    assert result == pytest.approx(
        {"recall@1": 0.2, "recall@2": 0.8, "recall@4": 1.0, "map@r": 0.2, "r_precision": 0.3}
    )


def test_worked_example_per_class_and_gap():
    per_class = per_class_recall_at_1(WORKED_POINTS, WORKED_LABELS, distance="euclidean")
    assert per_class[:2].tolist() == pytest.approx([1 / 3, 0.0])
    assert math.isnan(per_class[2])
    gap = worst_class_gap(WORKED_POINTS, WORKED_LABELS, fraction=0.5, distance="euclidean")
    assert gap["recall@1"] == pytest.approx(0.2)
    assert gap["mean_class_recall@1"] == pytest.approx(1 / 6)
    assert gap["worst_class_recall@1"] == pytest.approx(0.0)
    assert gap["gap"] == pytest.approx(1 / 6)
    assert gap["num_worst_classes"] == 1 and gap["num_classes"] == 2


# --------------------------------------------------------------------------------------------------
# Equality with PML's AccuracyCalculator
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("kind", ["continuous", "duplicates", "quantised"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pml_accuracy_calculator(distance, kind, seed):
    generator = torch.Generator().manual_seed(seed)
    labels = labels_with_small_classes(generator)
    embeddings = torch.randn(len(labels), 6, generator=generator)
    embeddings[labels == 9] += 1.0  # one class a little clustered, so the metrics are not all ~0
    if kind == "duplicates":
        embeddings = with_duplicates(embeddings, generator)
    elif kind == "quantised":  # a handful of values per coordinate: many exact distance ties
        embeddings = torch.round(embeddings).clamp(-1, 1) + 0.5
    ours = retrieval_metrics(embeddings, labels, ks=(1, 2, 4, 8), distance=distance)
    assert_close(ours, pml_metrics(embeddings, labels, distance))


def test_equals_pml_with_many_chunks():
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 30, (700,), generator=generator)
    embeddings = torch.randn(700, 16, generator=generator)
    ours = retrieval_metrics(embeddings, labels, ks=(1,), chunk_size=64)
    assert_close(ours, pml_metrics(embeddings, labels, "cosine"))


def test_chunk_size_does_not_change_results_with_ties():
    generator = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 12, (400,), generator=generator)
    embeddings = with_duplicates(torch.round(2 * torch.randn(400, 4, generator=generator)), generator)
    embeddings[embeddings.norm(dim=1) == 0, 0] = 1.0
    reference = retrieval_metrics(embeddings, labels)
    for chunk_size in (64, 100, 399, 10_000):
        assert retrieval_metrics(embeddings, labels, chunk_size=chunk_size) == reference


# --------------------------------------------------------------------------------------------------
# Brute force and semantics
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_recall_at_k_matches_brute_force(distance):
    generator = torch.Generator().manual_seed(5)
    labels = torch.cat([torch.randint(0, 15, (120,), generator=generator), torch.tensor([99])])
    embeddings = torch.randn(len(labels), 8, generator=generator) * torch.linspace(0.5, 2, 8)
    ks = (1, 2, 3, 4, 8, 16, 32)  # larger than the largest R for some: a second top-k search
    ours = retrieval_metrics(embeddings, labels, ks=ks, distance=distance)
    assert_close(ours, brute_force(embeddings, labels, ks, distance), tol=1e-9)


def test_query_excluded_by_index_not_by_distance():
    a, b = [1.0, 0.0], [0.0, 1.0]
    # A copy of the query with the same class is a correct first neighbour ...
    same = retrieval_metrics(torch.tensor([a, a, b, b]), torch.tensor([0, 0, 1, 1]), ks=(1,))
    assert same["recall@1"] == 1.0
    # ... a copy with another class is a wrong one: distance 0 is not the query itself.
    other = retrieval_metrics(torch.tensor([a, a, b, b]), torch.tensor([0, 1, 0, 1]), ks=(1,))
    assert other["recall@1"] == 0.0


def test_singleton_classes_are_left_out_but_stay_in_the_gallery():
    embeddings = torch.tensor([[0.0], [1.0], [1.9], [2.0]])
    labels = torch.tensor([0, 0, 1, 2])  # classes 1 and 2 are singletons
    result = retrieval_metrics(embeddings, labels, ks=(1, 2), distance="euclidean")
    # Query 0 -> 1 (hit); query 1 -> 1.9 (singleton of class 1, a miss), then 0 (hit).
    assert result == pytest.approx({"recall@1": 0.5, "recall@2": 1.0, "map@r": 0.5, "r_precision": 0.5})


def test_metrics_are_invariant_to_scale_for_cosine():
    generator = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 5, (60,), generator=generator)
    embeddings = torch.randn(60, 4, generator=generator)
    scaled = embeddings * torch.rand(60, 1, generator=generator).add(0.5)
    assert retrieval_metrics(embeddings, labels) == pytest.approx(retrieval_metrics(scaled, labels))


def test_perfect_embedding_scores_one():
    labels = torch.arange(40) % 4
    embeddings = F.one_hot(labels, 4).float() + 0.01 * torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    result = retrieval_metrics(embeddings, labels)
    assert all(value == pytest.approx(1.0) for value in result.values())


def test_float64_embeddings_accepted():
    generator = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 6, (80,), generator=generator)
    embeddings = torch.randn(80, 5, generator=generator, dtype=torch.float64)
    assert_close(retrieval_metrics(embeddings, labels), brute_force(embeddings, labels, (1, 2, 4, 8), "cosine"))


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------

GOOD_EMBEDDINGS = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
GOOD_LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])


@pytest.mark.parametrize(
    ("embeddings", "labels", "kwargs", "message"),
    [
        (torch.randn(10), GOOD_LABELS, {}, "2-D"),
        (torch.randn(10, 3, 1), GOOD_LABELS, {}, "2-D"),
        (torch.full((10, 3), float("nan")), GOOD_LABELS, {}, "NaN"),
        (GOOD_EMBEDDINGS, GOOD_LABELS[:9], {}, "disagree"),
        (GOOD_EMBEDDINGS, GOOD_LABELS.float(), {}, "integer"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"ks": (0, 1)}, "positive integer"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"ks": (1, -2)}, "positive integer"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"ks": ()}, "at least one"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"ks": (10,)}, "at least 11 embeddings"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"distance": "manhattan"}, "unknown distance"),
        (GOOD_EMBEDDINGS, GOOD_LABELS, {"chunk_size": 0}, "chunk_size"),
        (GOOD_EMBEDDINGS, torch.arange(10), {}, "nothing to retrieve"),
    ],
)
def test_bad_input_raises_value_error(embeddings, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(embeddings, labels, **kwargs)


def test_use_faiss():
    if importlib.util.find_spec("faiss") is None:
        with pytest.raises(ImportError, match="faiss"):
            retrieval_metrics(GOOD_EMBEDDINGS, GOOD_LABELS, use_faiss=True)
    else:
        generator = torch.Generator().manual_seed(8)
        labels = torch.randint(0, 6, (90,), generator=generator)
        embeddings = torch.randn(90, 5, generator=generator)
        assert_close(retrieval_metrics(embeddings, labels, use_faiss=True), retrieval_metrics(embeddings, labels))


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_faiss_equals_the_exact_search_on_a_larger_gallery(distance):
    """faiss (a dev dependency, optional for users) against the exact torch search: 4,000 × 32
    random embeddings of 100 classes, no exact ties, so every neighbour list is the same."""
    pytest.importorskip("faiss")
    generator = torch.Generator().manual_seed(11)
    labels = torch.randint(0, 100, (4000,), generator=generator)
    embeddings = torch.randn(100, 32, generator=generator)[labels] + 1.5 * torch.randn(4000, 32, generator=generator)
    exact = retrieval_metrics(embeddings, labels, ks=(1, 4, 16, 64), distance=distance)
    assert retrieval_metrics(embeddings, labels, ks=(1, 4, 16, 64), distance=distance, use_faiss=True) == exact


def test_worst_class_gap_rejects_bad_fraction():
    for fraction in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            worst_class_gap(GOOD_EMBEDDINGS, GOOD_LABELS, fraction=fraction)


# --------------------------------------------------------------------------------------------------
# Per-class recall, NMI
# --------------------------------------------------------------------------------------------------


def test_per_class_recall_weighted_mean_is_recall_at_1():
    generator = torch.Generator().manual_seed(9)
    labels = labels_with_small_classes(generator)
    embeddings = with_duplicates(torch.round(torch.randn(len(labels), 3, generator=generator)) + 0.5, generator)
    per_class = per_class_recall_at_1(embeddings, labels)
    counts = torch.bincount(labels).double()
    assert torch.isnan(per_class).tolist() == (counts < 2).tolist()
    valid = ~torch.isnan(per_class)
    weighted = (per_class[valid] * counts[valid]).sum() / counts[valid].sum()
    assert weighted.item() == pytest.approx(retrieval_metrics(embeddings, labels, ks=(1,))["recall@1"], abs=1e-12)
    gap = worst_class_gap(embeddings, labels, fraction=0.25)
    assert gap["num_worst_classes"] == math.ceil(0.25 * valid.sum().item())
    assert gap["worst_class_recall@1"] <= gap["mean_class_recall@1"]
    assert gap["gap"] == pytest.approx(gap["mean_class_recall@1"] - gap["worst_class_recall@1"])


def test_nmi_separated_clusters_and_determinism():
    generator = torch.Generator().manual_seed(10)
    labels = torch.arange(90) % 3
    centres = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    embeddings = centres[labels] + 0.02 * torch.randn(90, 3, generator=generator)
    assert nmi(embeddings, labels) == pytest.approx(1.0)
    noise = torch.randn(90, 3, generator=generator)
    first, second = nmi(noise, labels, seed=1), nmi(noise, labels, seed=1)
    assert first == second and 0.0 <= first < 0.5


# --------------------------------------------------------------------------------------------------
# embed
# --------------------------------------------------------------------------------------------------


class PlainDataset(Dataset):
    """The same items without ``get_batch``: exercised through a DataLoader."""

    def __init__(self, inner: TensorImageDataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        return self.inner[index]


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Dropout(0.5), nn.BatchNorm1d(8))


@pytest.fixture(scope="module")
def image_dataset() -> TensorImageDataset:
    generator = torch.Generator().manual_seed(11)
    images = torch.randint(0, 256, (37, 1, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.arange(37) % 5
    return TensorImageDataset(images, labels, [f"c{i}" for i in range(5)], name="tiny")


def test_embed_fast_path_and_loader_path_agree(image_dataset):
    model = small_model().train()
    embeddings, labels = embed(model, image_dataset, batch_size=10)
    assert model.training  # mode restored
    assert embeddings.dtype == torch.float32 and embeddings.device.type == "cpu"
    assert embeddings.shape == (37, 8) and torch.equal(labels, image_dataset.labels)
    model.eval()
    with torch.no_grad():
        expected = model(image_dataset.images.float() / 255)
    torch.testing.assert_close(embeddings, expected)  # eval mode: no dropout, running BN stats
    loader_embeddings, loader_labels = embed(model, PlainDataset(image_dataset), batch_size=16)
    assert not model.training  # an eval model stays in eval mode
    torch.testing.assert_close(loader_embeddings, embeddings)
    assert torch.equal(loader_labels, labels)


def test_embed_restores_mode_on_error(image_dataset):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Flatten(0)).train()  # returns 1-D
    with pytest.raises(ValueError, match="2-D"):
        embed(model, image_dataset)
    assert model.training


def test_embed_rejects_bad_batch_size(image_dataset):
    with pytest.raises(ValueError, match="batch_size"):
        embed(small_model(), image_dataset, batch_size=0)
