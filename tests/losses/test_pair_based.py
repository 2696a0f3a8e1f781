"""Pair-based losses and miners against pytorch-metric-learning (PML) and against loops.

Every loss and mining mode is checked for value and gradient (w.r.t. the embeddings) against PML
with the same arguments on float64 unit-norm batches of several shapes: balanced classes, classes
with a single sample, unequal class sizes and a single class. The options that give a paper's
version where PML differs are checked against plain loops written from the paper's equations.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from dmlkit import miners
from dmlkit.distances import CosineSimilarity, EuclideanDistance, PrecomputedSimilarity
from dmlkit.losses.pair_based import (
    CircleLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    DotProductSimilarity,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NPairsLoss,
    RankedListLoss,
    TripletMarginLoss,
    masked_logsumexp,
    pair_weight,
)
from tests._references import ATOL, LABELS, assert_same, make_batch


def with_miner(loss, miner):
    return lambda e, y: loss(e, y, miner(e, y))


def quiet(factory):
    """Build a PML object without its warnings (RankedListLoss warns for Tn > 5)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory()


# (id, dmlkit loss, PML callable) built lazily so that parametrisation stays cheap.
PML_CASES = {
    "contrastive": lambda: (ContrastiveLoss(), pml_losses.ContrastiveLoss()),
    "contrastive_margins": lambda: (
        ContrastiveLoss(0.3, 1.2),
        pml_losses.ContrastiveLoss(pos_margin=0.3, neg_margin=1.2),
    ),
    "contrastive_cosine": lambda: (
        ContrastiveLoss(0.9, 0.2, CosineSimilarity()),
        pml_losses.ContrastiveLoss(0.9, 0.2, distance=pml_distances.CosineSimilarity()),
    ),
    "triplet_all": lambda: (
        TripletMarginLoss(0.2, "all"),
        with_miner(pml_losses.TripletMarginLoss(0.2), pml_miners.TripletMarginMiner(0.2, "all")),
    ),
    "triplet_all_no_miner": lambda: (
        TripletMarginLoss(0.1, "all"),
        pml_losses.TripletMarginLoss(0.1),
    ),
    "triplet_semihard": lambda: (
        TripletMarginLoss(0.2, "semihard"),
        with_miner(pml_losses.TripletMarginLoss(0.2), pml_miners.TripletMarginMiner(0.2, "semihard")),
    ),
    "triplet_hard": lambda: (
        TripletMarginLoss(0.2, "hard"),
        with_miner(pml_losses.TripletMarginLoss(0.2), pml_miners.TripletMarginMiner(0.2, "hard")),
    ),
    "triplet_hard_zero_margin": lambda: (
        TripletMarginLoss(0.0, "hard"),
        with_miner(pml_losses.TripletMarginLoss(0.0), pml_miners.TripletMarginMiner(0.0, "hard")),
    ),
    "triplet_batch_hard": lambda: (
        TripletMarginLoss(0.2, "batch_hard"),
        with_miner(pml_losses.TripletMarginLoss(0.2), pml_miners.BatchHardMiner()),
    ),
    "triplet_batch_hard_soft": lambda: (
        TripletMarginLoss(0.0, "batch_hard", smooth_loss=True),
        with_miner(pml_losses.TripletMarginLoss(0.0, smooth_loss=True), pml_miners.BatchHardMiner()),
    ),
    "triplet_all_smooth": lambda: (
        TripletMarginLoss(0.2, "all", smooth_loss=True),
        pml_losses.TripletMarginLoss(0.2, smooth_loss=True),
    ),
    "triplet_semihard_smooth": lambda: (
        TripletMarginLoss(0.2, "semihard", smooth_loss=True),
        with_miner(
            pml_losses.TripletMarginLoss(0.2, smooth_loss=True),
            pml_miners.TripletMarginMiner(0.2, "semihard"),
        ),
    ),
    "triplet_cosine": lambda: (
        TripletMarginLoss(0.3, "all", CosineSimilarity()),
        pml_losses.TripletMarginLoss(0.3, distance=pml_distances.CosineSimilarity()),
    ),
    "triplet_squared": lambda: (
        TripletMarginLoss(0.2, "semihard", EuclideanDistance(squared=True)),
        with_miner(
            pml_losses.TripletMarginLoss(0.2, distance=pml_distances.LpDistance(power=2)),
            pml_miners.TripletMarginMiner(0.2, "semihard", distance=pml_distances.LpDistance(power=2)),
        ),
    ),
    "lifted": lambda: (LiftedStructureLoss(), pml_losses.LiftedStructureLoss()),
    "lifted_margins": lambda: (
        LiftedStructureLoss(1.3, 0.2),
        pml_losses.LiftedStructureLoss(neg_margin=1.3, pos_margin=0.2),
    ),
    "npairs": lambda: (NPairsLoss(), pml_losses.NPairsLoss()),
    "multi_similarity": lambda: (
        MultiSimilarityLoss(2, 40, 0.5),
        pml_losses.MultiSimilarityLoss(2, 40, 0.5),
    ),
    "multi_similarity_pml_defaults": lambda: (
        MultiSimilarityLoss(2, 50, 0.5),
        pml_losses.MultiSimilarityLoss(),
    ),
    "multi_similarity_mined": lambda: (
        MultiSimilarityLoss(2, 40, 0.5, epsilon=0.1),
        with_miner(pml_losses.MultiSimilarityLoss(2, 40, 0.5), pml_miners.MultiSimilarityMiner(0.1)),
    ),
    "multi_similarity_mined_wide": lambda: (
        MultiSimilarityLoss(3, 20, 0.3, epsilon=0.5),
        with_miner(pml_losses.MultiSimilarityLoss(3, 20, 0.3), pml_miners.MultiSimilarityMiner(0.5)),
    ),
    "ranked_list": lambda: (
        RankedListLoss(0.2, 10, 0.5, 1.4, 0),
        quiet(lambda: pml_losses.RankedListLoss(margin=0.2, Tn=10, imbalance=0.5, alpha=1.4, Tp=0)),
    ),
    "ranked_list_weighted": lambda: (
        RankedListLoss(0.4, 3, 0.3, 1.2, 2),
        pml_losses.RankedListLoss(margin=0.4, Tn=3, imbalance=0.3, alpha=1.2, Tp=2),
    ),
    "circle": lambda: (CircleLoss(), pml_losses.CircleLoss()),
    "circle_face": lambda: (CircleLoss(0.25, 256), pml_losses.CircleLoss(m=0.25, gamma=256)),
}


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("case", list(PML_CASES))
def test_equals_pml(case: str, kind: str) -> None:
    ours, reference = PML_CASES[case]()
    for seed in (0, 1):
        embeddings, labels = make_batch(kind, seed)
        assert_same(ours, reference, embeddings, labels)


def test_unnormalised_embeddings_equal_pml() -> None:
    """PML and dmlkit both L2-normalise first, so raw embeddings give the same numbers."""
    embeddings, labels = make_batch("unequal", 3)
    embeddings = embeddings * torch.linspace(0.5, 3.0, len(labels), dtype=torch.float64)[:, None]
    for case in ("contrastive", "triplet_semihard", "multi_similarity_mined", "circle", "npairs"):
        ours, reference = PML_CASES[case]()
        assert_same(ours, reference, embeddings, labels)


def test_larger_batch_equals_pml() -> None:
    """A P x K batch like the benchmark's, smaller: 8 classes x 4 samples, 16 dimensions."""
    generator = torch.Generator().manual_seed(7)
    labels = torch.arange(8).repeat_interleave(4)
    embeddings = F.normalize(torch.randn(32, 16, generator=generator, dtype=torch.float64), dim=1)
    cases = ("triplet_all", "triplet_semihard", "triplet_hard", "multi_similarity_mined", "lifted")
    for case in cases:
        ours, reference = PML_CASES[case]()
        assert_same(ours, reference, embeddings, labels)


# --------------------------------------------------------------------------------------------
# Miners
# --------------------------------------------------------------------------------------------


def as_set(indices) -> set[tuple[int, ...]]:
    return set(zip(*(t.tolist() for t in indices)))


@pytest.mark.parametrize("kind", ["balanced", "singletons", "one_class"])
@pytest.mark.parametrize("type_of_triplets", ["all", "hard", "semihard", "easy"])
def test_triplet_margin_miner_equals_pml(type_of_triplets: str, kind: str) -> None:
    embeddings, labels = make_batch(kind, 2)
    ours = miners.TripletMarginMiner(0.2, type_of_triplets)(embeddings, labels)
    reference = pml_miners.TripletMarginMiner(0.2, type_of_triplets)(embeddings, labels)
    assert as_set(ours) == as_set(reference)


@pytest.mark.parametrize("kind", ["balanced", "singletons", "one_class"])
def test_batch_hard_miner_equals_pml(kind: str) -> None:
    embeddings, labels = make_batch(kind, 3)
    ours = miners.BatchHardMiner()(embeddings, labels)
    reference = pml_miners.BatchHardMiner()(embeddings, labels)
    assert as_set(ours) == as_set(reference)


@pytest.mark.parametrize("kind", ["balanced", "singletons", "unequal"])
@pytest.mark.parametrize("epsilon", [0.1, 0.4])
def test_multi_similarity_miner_equals_pml(epsilon: float, kind: str) -> None:
    embeddings, labels = make_batch(kind, 4)
    ours = miners.MultiSimilarityMiner(epsilon)(embeddings, labels)
    reference = pml_miners.MultiSimilarityMiner(epsilon)(embeddings, labels)
    assert as_set(ours[:2]) == as_set(reference[:2])
    assert as_set(ours[2:]) == as_set(reference[2:])


def test_miner_with_reference_set() -> None:
    embeddings, labels = make_batch("balanced", 5)
    ref, ref_labels = make_batch("unequal", 6)
    ours = miners.TripletMarginMiner(0.3, "semihard")(embeddings, labels, ref, ref_labels)
    reference = pml_miners.TripletMarginMiner(0.3, "semihard")(embeddings, labels, ref, ref_labels)
    assert as_set(ours) == as_set(reference)


def test_mined_indices_reproduce_the_loss() -> None:
    """The loss's internal selection agrees with the miner module's indices."""
    embeddings, labels = make_batch("unequal", 8)
    pml_loss = pml_losses.TripletMarginLoss(0.2)
    for mining in ("semihard", "hard"):
        indices = miners.TripletMarginMiner(0.2, mining)(embeddings, labels)
        ours = TripletMarginLoss(0.2, mining)
        assert_same(ours, lambda e, y, i=indices: pml_loss(e, y, i), embeddings, labels)


# --------------------------------------------------------------------------------------------
# Paper variants against loops written from the equations
# --------------------------------------------------------------------------------------------


def pairwise_distances(embeddings: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    x = F.normalize(embeddings, dim=1) if normalize else embeddings
    n = len(x)
    rows = [torch.stack([torch.linalg.norm(x[i] - x[j]) for j in range(n)]) for i in range(n)]
    return torch.stack(rows)


def loop_hadsell(embeddings, labels, margin):
    """Hadsell et al. Eq. 4 averaged over ordered pairs: (1-Y) 1/2 D^2 + Y 1/2 max(0, m - D)^2."""
    d = pairwise_distances(embeddings)
    terms = []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j:
                continue
            if labels[i] == labels[j]:
                terms.append(0.5 * d[i, j] ** 2)
            else:
                terms.append(0.5 * torch.clamp(margin - d[i, j], min=0) ** 2)
    return torch.stack(terms).mean()


def anchors_with_pairs(labels):
    """``(anchor, positives, negatives)`` for every anchor with at least one of each (indices)."""
    n = len(labels)
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        if positives and negatives:
            yield a, positives, negatives


def loop_triplet_mean(embeddings, labels, margin, mining):
    """Hermans et al.: batch all (mean over valid triplets) or batch hard (mean over anchors)."""
    d = pairwise_distances(embeddings)
    terms = []
    for a, positives, negatives in anchors_with_pairs(labels):
        if mining == "batch_hard":
            hardest_p = max(d[a, p] for p in positives)
            hardest_n = min(d[a, k] for k in negatives)
            terms.append(torch.clamp(hardest_p - hardest_n + margin, min=0))
        else:
            for p in positives:
                for k in negatives:
                    terms.append(torch.clamp(d[a, p] - d[a, k] + margin, min=0))
    return torch.stack(terms).mean() if terms else embeddings.sum() * 0


def loop_lifted(embeddings, labels, alpha):
    """Oh Song et al. Eq. 4 over ordered positive pairs."""
    d = pairwise_distances(embeddings)
    n = len(labels)
    total, count = embeddings.sum() * 0, 0
    for i in range(n):
        for j in range(n):
            if i == j or labels[i] != labels[j]:
                continue
            count += 1
            exps = [torch.exp(alpha - d[i, k]) for k in range(n) if labels[k] != labels[i]]
            exps += [torch.exp(alpha - d[j, k]) for k in range(n) if labels[k] != labels[j]]
            if not exps:
                continue  # log of an empty sum: -inf, the pair costs nothing
            j_ij = torch.log(torch.stack(exps).sum()) + d[i, j]
            total = total + torch.clamp(j_ij, min=0) ** 2
    return total / (2 * count) if count else total


def loop_ms_released_code(embeddings, labels, alpha, beta, base, epsilon):
    """The authors' released multi-similarity code: mining, then anchors lacking either a mined
    positive or a mined negative are skipped; the sum is divided by the batch size."""
    x = F.normalize(embeddings, dim=1)
    sim = x @ x.T
    losses = []
    for i, pos_idx, neg_idx in anchors_with_pairs(labels):
        pos, neg = sim[i, pos_idx], sim[i, neg_idx]
        neg_kept = neg[neg + epsilon > pos.min()]
        pos_kept = pos[pos - epsilon < neg.max()]
        if len(neg_kept) == 0 or len(pos_kept) == 0:
            continue
        pos_loss = torch.log(1 + torch.exp(-alpha * (pos_kept - base)).sum()) / alpha
        neg_loss = torch.log(1 + torch.exp(beta * (neg_kept - base)).sum()) / beta
        losses.append(pos_loss + neg_loss)
    return torch.stack(losses).sum() / len(labels) if losses else embeddings.sum() * 0


def loop_ranked_list(embeddings, labels, margin, tn, imbalance, alpha, tp):
    """Ranked list loss with exact weighted means per anchor, averaged over anchors; the weights are
    constants in the gradient, as in the authors' code (variant="paper")."""
    d = pairwise_distances(embeddings)
    n = len(labels)
    per_anchor = []
    for i in range(n):
        same = [j for j in range(n) if j != i and labels[j] == labels[i]]
        pos = [d[i, j] for j in same if d[i, j] > alpha - margin]
        neg = [d[i, j] for j in range(n) if labels[j] != labels[i] and d[i, j] < alpha]
        loss_p = embeddings.sum() * 0
        if pos:
            w = [torch.exp(tp * (v - (alpha - margin))).detach() for v in pos]
            loss_p = sum(wi * (v - (alpha - margin)) for wi, v in zip(w, pos)) / sum(w)
        loss_n = embeddings.sum() * 0
        if neg:
            w = [torch.exp(tn * (alpha - v)).detach() for v in neg]
            loss_n = sum(wi * (alpha - v) for wi, v in zip(w, neg)) / sum(w)
        per_anchor.append((1 - imbalance) * loss_p + imbalance * loss_n)
    return torch.stack(per_anchor).mean()


def loop_npairs_paper(embeddings, labels, l2_reg_weight):
    """Sohn's N-pair-mc loss on raw inner products plus an L2 penalty on the used embeddings."""
    firsts, seconds = {}, {}
    for i, y in enumerate(labels.tolist()):
        if y not in firsts:
            firsts[y] = i
        elif y not in seconds:
            seconds[y] = i
    classes = [y for y in firsts if y in seconds]
    if not classes:
        return embeddings.sum() * 0
    terms, norms = [], []
    for y in classes:
        a, p = embeddings[firsts[y]], embeddings[seconds[y]]
        others = [embeddings[seconds[z]] for z in classes if z != y]
        inner = [a @ o - a @ p for o in others]
        terms.append(torch.log(1 + torch.stack(inner).exp().sum()) if inner else a.sum() * 0)
        norms += [a @ a, p @ p]
    return torch.stack(terms).mean() + l2_reg_weight * torch.stack(norms).mean()


@pytest.mark.parametrize("kind", list(LABELS))
def test_contrastive_paper_variant(kind: str) -> None:
    embeddings, labels = make_batch(kind, 11)
    ours = ContrastiveLoss(0.0, 0.9, squared=True, reduction="mean")
    assert_same(ours, lambda e, y: loop_hadsell(e, y, 0.9), embeddings, labels)


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("mining", ["all", "batch_hard"])
def test_triplet_mean_reduction(mining: str, kind: str) -> None:
    embeddings, labels = make_batch(kind, 12)
    ours = TripletMarginLoss(0.3, mining, reduction="mean")
    assert_same(ours, lambda e, y: loop_triplet_mean(e, y, 0.3, mining), embeddings, labels)


@pytest.mark.parametrize("kind", list(LABELS))
def test_lifted_against_equation(kind: str) -> None:
    embeddings, labels = make_batch(kind, 13)
    assert_same(LiftedStructureLoss(1.0), lambda e, y: loop_lifted(e, y, 1.0), embeddings, labels)


@pytest.mark.parametrize("kind", list(LABELS))
def test_multi_similarity_released_code_variant(kind: str) -> None:
    embeddings, labels = make_batch(kind, 14)
    ours = MultiSimilarityLoss(2, 40, 0.5, epsilon=0.1, skip_incomplete_anchors=True)
    reference = lambda e, y: loop_ms_released_code(e, y, 2, 40, 0.5, 0.1)  # noqa: E731
    assert_same(ours, reference, embeddings, labels)


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("params", [(0.2, 10.0, 0.5, 1.4, 0.0), (0.4, 3.0, 0.3, 1.2, 2.0)])
def test_ranked_list_paper_variant(params, kind: str) -> None:
    embeddings, labels = make_batch(kind, 15)
    ours = RankedListLoss(*params, variant="paper")
    assert_same(ours, lambda e, y: loop_ranked_list(e, y, *params), embeddings, labels)


@pytest.mark.parametrize("kind", list(LABELS))
def test_npairs_paper_variant(kind: str) -> None:
    embeddings, labels = make_batch(kind, 16)
    embeddings = embeddings * 1.7  # raw inner products: the norm matters
    ours = NPairsLoss(DotProductSimilarity(normalize_embeddings=False), l2_reg_weight=0.01)
    assert_same(ours, lambda e, y: loop_npairs_paper(e, y, 0.01), embeddings, labels)


def test_masked_logsumexp() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)
    plain = masked_logsumexp(x, mask, empty_value=-7.0)
    with_one = masked_logsumexp(x, mask, add_one=True)
    for row in range(4):
        values = x[row][mask[row]]
        expected = torch.logsumexp(values, 0) if len(values) else torch.tensor(-7.0, dtype=x.dtype)
        torch.testing.assert_close(plain[row], expected)
        zero = torch.tensor(0.0, dtype=x.dtype)
        expected_one = torch.log1p(values.exp().sum()) if len(values) else zero
        torch.testing.assert_close(with_one[row], expected_one)
    (plain.sum() + with_one.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[~mask] == 0).all()


# --------------------------------------------------------------------------------------------
# Cross-batch memory
# --------------------------------------------------------------------------------------------

XBM_CASES = {
    "contrastive": lambda: (ContrastiveLoss(), pml_losses.ContrastiveLoss(), None),
    "triplet_all": lambda: (TripletMarginLoss(0.2), pml_losses.TripletMarginLoss(0.2), None),
    "triplet_semihard": lambda: (
        TripletMarginLoss(0.2, "semihard"),
        pml_losses.TripletMarginLoss(0.2),
        pml_miners.TripletMarginMiner(0.2, "semihard"),
    ),
    "triplet_batch_hard": lambda: (
        TripletMarginLoss(0.2, "batch_hard"),
        pml_losses.TripletMarginLoss(0.2),
        pml_miners.BatchHardMiner(),
    ),
    "multi_similarity": lambda: (
        MultiSimilarityLoss(2, 40, 0.5),
        pml_losses.MultiSimilarityLoss(2, 40, 0.5),
        None,
    ),
    "multi_similarity_mined": lambda: (
        MultiSimilarityLoss(2, 40, 0.5, epsilon=0.1),
        pml_losses.MultiSimilarityLoss(2, 40, 0.5),
        pml_miners.MultiSimilarityMiner(0.1),
    ),
    "circle": lambda: (CircleLoss(), pml_losses.CircleLoss(), None),
}


@pytest.mark.parametrize("case", list(XBM_CASES))
def test_cross_batch_memory_equals_pml(case: str) -> None:
    """PML's semantics: no warm-up, memory term only; 5 batches of 10, memory of 24 (wraps)."""
    inner, pml_inner, pml_miner = XBM_CASES[case]()
    ours = CrossBatchMemory(inner, 8, 24, start_iteration=0, include_batch_loss=False)
    reference = pml_losses.CrossBatchMemory(pml_inner, 8, memory_size=24, miner=pml_miner)
    for step in range(5):
        embeddings, labels = make_batch("unequal", 20 + step)
        embeddings, labels = embeddings[:10], labels[:10]
        assert_same(ours, reference, embeddings, labels)
    torch.testing.assert_close(ours.embedding_memory, reference.embedding_memory.to(ours.embedding_memory.dtype))
    assert torch.equal(ours.label_memory, reference.label_memory)


def test_cross_batch_memory_warm_up_and_paper_loss() -> None:
    loss = MultiSimilarityLoss(2, 40, 0.5)
    xbm = CrossBatchMemory(loss, 8, 30, start_iteration=2, memory_weight=0.5)
    batches = [make_batch("balanced", 30 + i) for i in range(4)]
    for embeddings, labels in batches[:2]:  # warm-up: the plain batch loss, nothing stored
        torch.testing.assert_close(xbm(embeddings, labels), loss(embeddings, labels))
        assert xbm.num_filled == 0
    # First step with memory: the memory holds this batch only, so the memory term equals the
    # batch loss and the total is (1 + weight) * batch loss.
    embeddings, labels = batches[2]
    torch.testing.assert_close(xbm(embeddings, labels), 1.5 * loss(embeddings, labels))
    # Next step: batch loss + 0.5 * loss against the memory [batch 2, batch 3 (first 14 rows)].
    embeddings, labels = batches[3]
    leaf = embeddings.clone().requires_grad_(True)
    value = xbm(leaf, labels)
    memory = torch.cat([batches[2][0], embeddings[:14]])
    memory_labels = torch.cat([batches[2][1], labels[:14]])
    self_mask = torch.zeros(16, 30, dtype=torch.bool)
    self_mask[torch.arange(14), torch.arange(16, 30)] = True
    self_mask[torch.arange(14, 16), torch.arange(0, 2)] = True  # wrapped around: slots 0, 1
    memory[0:2] = embeddings[14:16]
    memory_labels[0:2] = labels[14:16]
    expected = loss(embeddings, labels) + 0.5 * loss.compute_loss(embeddings, labels, memory, memory_labels, self_mask)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(xbm.embedding_memory, memory)
    value.backward()
    assert torch.isfinite(leaf.grad).all()


def test_cross_batch_memory_rejects() -> None:
    with pytest.raises(ValueError, match="N-pair|NPairs|cross-batch"):
        CrossBatchMemory(NPairsLoss(), 8)
    with pytest.raises(ValueError, match="PairBasedLoss"):
        CrossBatchMemory(torch.nn.MSELoss(), 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory_size"):
        CrossBatchMemory(ContrastiveLoss(), 8, 0)
    xbm = CrossBatchMemory(ContrastiveLoss(), 8, 4, start_iteration=0)
    embeddings, labels = make_batch("balanced")
    with pytest.raises(ValueError, match="larger than the memory"):
        xbm(embeddings, labels)
    with pytest.raises(ValueError, match="size 8"):
        CrossBatchMemory(ContrastiveLoss(), 8, 64)(torch.randn(4, 5), torch.arange(4))


# --------------------------------------------------------------------------------------------
# Degenerate inputs and validation
# --------------------------------------------------------------------------------------------

ALL_LOSSES = {
    "contrastive": lambda: ContrastiveLoss(),
    "contrastive_paper": lambda: ContrastiveLoss(squared=True, reduction="mean"),
    **{f"triplet_{m}": (lambda m=m: TripletMarginLoss(0.2, m)) for m in ("all", "semihard", "hard", "batch_hard")},
    "triplet_smooth": lambda: TripletMarginLoss(0.2, "semihard", smooth_loss=True),
    "lifted": lambda: LiftedStructureLoss(),
    "npairs": lambda: NPairsLoss(),
    "npairs_paper": lambda: NPairsLoss(DotProductSimilarity(False), l2_reg_weight=0.01),
    "multi_similarity": lambda: MultiSimilarityLoss(),
    "multi_similarity_mined": lambda: MultiSimilarityLoss(epsilon=0.1),
    "ranked_list": lambda: RankedListLoss(),
    "ranked_list_paper": lambda: RankedListLoss(variant="paper"),
    "circle": lambda: CircleLoss(),
    "xbm": lambda: CrossBatchMemory(MultiSimilarityLoss(epsilon=0.1), 8, 64, start_iteration=0),
}


@pytest.mark.parametrize("degenerate", ["duplicates", "all_equal", "one_class_equal"])
@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_finite_gradients_on_degenerate_input(name: str, degenerate: str) -> None:
    embeddings, labels = make_batch("balanced", 40)
    if degenerate == "duplicates":
        embeddings = embeddings[:8].repeat(2, 1)  # every row has an identical twin
    elif degenerate == "all_equal":
        embeddings = embeddings[:1].repeat(len(labels), 1)
    else:
        embeddings, labels = embeddings[:1].repeat(6, 1), torch.zeros(6, dtype=torch.long)
    loss_fn = ALL_LOSSES[name]()
    for _ in range(2):  # twice, so that the memory of XBM is used
        leaf = embeddings.clone().requires_grad_(True)
        loss = loss_fn(leaf, labels)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize(
    "name",
    [
        "triplet_all",
        "triplet_semihard",
        "triplet_hard",
        "triplet_batch_hard",
        "triplet_smooth",
        "lifted",
        "npairs",
        "multi_similarity_mined",
        "circle",
    ],
)
def test_no_positive_pair_gives_zero_on_the_graph(name: str) -> None:
    """Every sample its own class: nothing to learn, a zero loss that still backpropagates."""
    embeddings, _ = make_batch("balanced", 41)
    labels = torch.arange(len(embeddings))
    leaf = embeddings.clone().requires_grad_(True)
    loss = ALL_LOSSES[name]()(leaf, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert leaf.grad is not None and (leaf.grad == 0).all()


INVALID = [
    (ContrastiveLoss, {"pos_margin": 1.0, "neg_margin": 0.5}),
    (ContrastiveLoss, {"pos_margin": 0.0, "neg_margin": 1.0, "distance": CosineSimilarity()}),
    (ContrastiveLoss, {"neg_margin": float("nan")}),
    (ContrastiveLoss, {"reduction": "sum"}),
    (ContrastiveLoss, {"distance": "euclidean"}),
    (TripletMarginLoss, {"margin": -0.1}),
    (TripletMarginLoss, {"mining": "easy"}),
    (TripletMarginLoss, {"margin": 0.0, "mining": "semihard"}),
    (TripletMarginLoss, {"reduction": "none"}),
    (LiftedStructureLoss, {"neg_margin": float("inf")}),
    (NPairsLoss, {"l2_reg_weight": -1.0}),
    (MultiSimilarityLoss, {"alpha": 0.0}),
    (MultiSimilarityLoss, {"beta": -40.0}),
    (MultiSimilarityLoss, {"epsilon": -0.1}),
    (RankedListLoss, {"imbalance": 1.5}),
    (RankedListLoss, {"alpha": 0.0}),
    (RankedListLoss, {"Tn": -1.0}),
    (RankedListLoss, {"distance": CosineSimilarity()}),
    (RankedListLoss, {"variant": "other"}),
    (CircleLoss, {"gamma": 0.0}),
    (CircleLoss, {"m": -0.2}),
]


@pytest.mark.parametrize(("cls", "kwargs"), INVALID, ids=lambda v: getattr(v, "__name__", str(v)))
def test_invalid_constructor_arguments(cls, kwargs) -> None:
    with pytest.raises(ValueError):
        cls(**kwargs)


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_bad_inputs(name: str) -> None:
    loss_fn = ALL_LOSSES[name]()
    embeddings, labels = make_batch("balanced", 42)
    with pytest.raises(ValueError, match="2-D"):
        loss_fn(embeddings[0], labels)
    nan = embeddings.clone()
    nan[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss_fn(nan, labels)
    with pytest.raises(ValueError, match="batch size"):
        loss_fn(embeddings, labels[:-1])
    with pytest.raises(ValueError, match="integer"):
        loss_fn(embeddings, labels.float())


def test_reference_set_arguments() -> None:
    embeddings, labels = make_batch("balanced", 43)
    loss = ContrastiveLoss()
    with pytest.raises(ValueError, match="both"):
        loss(embeddings, labels, ref_emb=embeddings)
    with pytest.raises(ValueError, match="dimensions"):
        loss(embeddings, labels, embeddings[:, :4], labels)
    with pytest.raises(ValueError, match="reference"):
        NPairsLoss()(embeddings, labels, embeddings, labels)
    # With a reference set the loss equals PML's with ref_emb.
    ref, ref_labels = make_batch("unequal", 44)
    for case in ("contrastive", "triplet_all_no_miner", "multi_similarity", "circle"):
        ours, reference = PML_CASES[case]()
        value = ours(embeddings, labels, ref, ref_labels)
        expected = reference(embeddings, labels, ref_emb=ref, ref_labels=ref_labels)
        assert math.isclose(value.item(), expected.item(), abs_tol=ATOL)


def test_pair_weight_is_the_papers_multi_similarity_weight():
    """Wang et al., Eq. 12: the weight of a negative pair at similarity s among three others at 0.45."""
    ms = MultiSimilarityLoss(distance=PrecomputedSimilarity())
    s, others = 0.6, 0.45
    expected = math.exp(ms.beta * (s - ms.base)) / (
        1 + math.exp(ms.beta * (s - ms.base)) + 3 * math.exp(ms.beta * (others - ms.base))
    )
    weight = pair_weight(ms, [1.0, s, 0.8, others, others, others], torch.tensor([0, 1, 0, 1, 1, 1]), 1)
    assert weight == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="PrecomputedSimilarity"):
        pair_weight(MultiSimilarityLoss(), [1.0, 0.5], torch.tensor([0, 1]), 1)
    with pytest.raises(ValueError, match="one similarity per label"):
        pair_weight(ms, [1.0, 0.5, 0.2], torch.tensor([0, 1]), 1)
