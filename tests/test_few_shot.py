"""Few-shot heads, episodic loss and episode evaluation against hand computations and plain loops."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dmlkit.data import EpisodeSampler
from dmlkit.data.base import TensorImageDataset
from dmlkit.few_shot import (
    EpisodicLoss,
    HyperbolicPrototypicalNetworks,
    MatchingNetworks,
    PrototypicalNetworks,
    SemiSupervisedPrototypes,
    confidence_interval,
    distance_statistics,
    evaluate_embeddings,
    evaluate_episodes,
    make_classifier,
    paired_difference,
    sample_episodes,
    split_support_query,
)
from dmlkit.geometry import HyperbolicProjection, dist, einstein_midpoint
from dmlkit.reporting import format_accuracy_table
from dmlkit.train import fit

D64 = torch.float64

# The notebook's worked example: three classes of two support points, one query.
SUPPORT = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 4.0], [4.0, 4.0], [4.0, 2.0]], dtype=D64)
SUPPORT_LABELS = torch.tensor([0, 0, 1, 1, 2, 2])
QUERY = torch.tensor([[1.0, 1.0], [3.0, 3.5]], dtype=D64)


def random_episode(seed, n_way=4, k_shot=3, n_query=5, dim=6, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(n_way * k_shot, dim, generator=g, dtype=dtype)
    labels = torch.arange(n_way).repeat_interleave(k_shot)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    query = torch.randn(n_query * n_way, dim, generator=g, dtype=dtype)
    return support, labels, query


# ----------------------------------------------------------------------------------------------
# Prototypical networks
# ----------------------------------------------------------------------------------------------
def test_protonet_logits_by_hand():
    head = PrototypicalNetworks()
    # prototypes (1, 0), (0, 3), (4, 3); query (1, 1): squared distances 1, 5, 13
    torch.testing.assert_close(
        head.prototypes(SUPPORT, SUPPORT_LABELS), torch.tensor([[1.0, 0.0], [0.0, 3.0], [4.0, 3.0]], dtype=D64)
    )
    logits = head(SUPPORT, SUPPORT_LABELS, QUERY)
    # query (3, 3.5): (4 + 12.25), (9 + 0.25), (1 + 0.25)
    expected = -torch.tensor([[1.0, 5.0, 13.0], [16.25, 9.25, 1.25]], dtype=D64)
    torch.testing.assert_close(logits, expected)
    probability = torch.softmax(logits, dim=1)[0, 0]
    assert probability.item() == pytest.approx(math.exp(-1) / (math.exp(-1) + math.exp(-5) + math.exp(-13)))
    # options: non-squared distance, cosine similarity, temperature
    torch.testing.assert_close(
        PrototypicalNetworks("euclidean")(SUPPORT, SUPPORT_LABELS, QUERY), -expected.neg().sqrt()
    )
    cosine = PrototypicalNetworks("cosine", temperature=0.5)(SUPPORT, SUPPORT_LABELS, QUERY[:1])
    q = 1 / math.sqrt(2)
    torch.testing.assert_close(cosine, torch.tensor([[q, q, 7 * q / 5]], dtype=D64) / 0.5)


def test_protonet_is_a_linear_classifier():
    """Snell et al., Sec. 2.4: -||x - c||^2 = 2 c.x - ||c||^2 - ||x||^2."""
    support, labels, query = random_episode(1)
    head = PrototypicalNetworks()
    c = head.prototypes(support, labels)
    linear = 2 * query @ c.T - c.pow(2).sum(1) - query.pow(2).sum(1, keepdim=True)
    torch.testing.assert_close(head(support, labels, query), linear)


# ----------------------------------------------------------------------------------------------
# Matching networks
# ----------------------------------------------------------------------------------------------
def matching_loop(support, labels, query, temperature=1.0):
    n_way = int(labels.max()) + 1
    out = torch.empty(query.shape[0], n_way, dtype=support.dtype)
    for q in range(query.shape[0]):
        sims = [F.cosine_similarity(query[q], support[i], dim=0) / temperature for i in range(support.shape[0])]
        weights = torch.softmax(torch.stack(sims), dim=0)
        for k in range(n_way):
            out[q, k] = math.log(sum(float(weights[i]) for i in range(support.shape[0]) if labels[i] == k))
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_matching_equals_a_plain_loop(temperature):
    support, labels, query = random_episode(2)
    log_p = MatchingNetworks(temperature)(support, labels, query)
    torch.testing.assert_close(log_p, matching_loop(support, labels, query, temperature))
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(query.shape[0], dtype=D64))


# ----------------------------------------------------------------------------------------------
# Semi-supervised prototypes (Ren et al., ICLR 2018)
# ----------------------------------------------------------------------------------------------
def soft_kmeans_loop(support, labels, unlabelled, variant, steps, radius=1.0, beta=1.0, gamma=10.0, mask_net=None):
    """Eqs. 1 and 4-8 of Ren et al., one unlabelled point and one class at a time."""
    n_way = int(labels.max()) + 1
    protos = [support[labels == c].mean(0) for c in range(n_way)]
    for _ in range(steps):
        d = [[float((u - p).pow(2).sum()) for p in protos] for u in unlabelled]  # d[j][c]
        z = []
        for j in range(len(unlabelled)):
            if variant == "cluster":
                a = lambda r: 0.5 * math.log(2 * math.pi) + math.log(r)  # noqa: E731
                terms = [math.exp(-d[j][c] - a(1.0)) for c in range(n_way)]
                terms.append(math.exp(-float(unlabelled[j].pow(2).sum()) / radius**2 - a(radius)))
            else:
                terms = [math.exp(-d[j][c]) for c in range(n_way)]
            z.append([t / sum(terms) for t in terms[:n_way]])
        if variant == "masked":
            for c in range(n_way):
                mean = sum(d[j][c] for j in range(len(unlabelled))) / len(unlabelled)
                dn = [d[j][c] / mean for j in range(len(unlabelled))]
                b, g = beta, gamma
                if mask_net is not None:
                    m = np.mean(dn)
                    var = np.mean([(x - m) ** 2 for x in dn])
                    skew = np.mean([(x - m) ** 3 for x in dn]) / var**1.5
                    kurt = np.mean([(x - m) ** 4 for x in dn]) / var**2 - 3
                    stats = torch.tensor([min(dn), max(dn), var, skew, kurt], dtype=D64)
                    out = mask_net(stats)
                    b, g = math.exp(float(out[0])), math.exp(float(out[1]))
                for j in range(len(unlabelled)):
                    z[j][c] *= 1 / (1 + math.exp(g * (dn[j] - b)))
        new = []
        for c in range(n_way):
            numerator = support[labels == c].sum(0) + sum(z[j][c] * unlabelled[j] for j in range(len(unlabelled)))
            denominator = float((labels == c).sum()) + sum(z[j][c] for j in range(len(unlabelled)))
            new.append(numerator / denominator)
        protos = new
    return torch.stack(protos)


@pytest.mark.parametrize("variant", ["none", "cluster", "masked"])
@pytest.mark.parametrize("steps", [1, 3])
def test_soft_kmeans_equals_ren_et_al_loop(variant, steps):
    support, labels, query = random_episode(3, dim=3)
    unlabelled = torch.randn(7, 3, generator=torch.Generator().manual_seed(9), dtype=D64)
    options = dict(distractor_radius=1.7) if variant == "cluster" else {}
    if variant == "masked":
        options = dict(mask_threshold=0.9, mask_slope=4.0)
    head = SemiSupervisedPrototypes(variant, num_steps=steps, **options).double()
    expected = soft_kmeans_loop(support, labels, unlabelled, variant, steps, radius=1.7, beta=0.9, gamma=4.0)
    torch.testing.assert_close(head.refine(support, labels, unlabelled), expected)
    logits = head(support, labels, query, unlabelled)
    torch.testing.assert_close(logits, -(query[:, None] - expected[None]).pow(2).sum(-1))


def test_masked_soft_kmeans_with_a_mask_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 20), nn.Tanh(), nn.Linear(20, 2)).double()
    support, labels, _ = random_episode(4, dim=3)
    unlabelled = torch.randn(9, 3, generator=torch.Generator().manual_seed(5), dtype=D64)
    head = SemiSupervisedPrototypes("masked", mask_net=net).double()
    with torch.no_grad():
        expected = soft_kmeans_loop(support, labels, unlabelled, "masked", 1, mask_net=net)
    torch.testing.assert_close(head.refine(support, labels, unlabelled), expected)
    stats = distance_statistics(torch.rand(2, 6, 3, dtype=D64))
    assert stats.shape == (2, 3, 5)


def test_soft_kmeans_worked_example_and_no_unlabelled():
    head = SemiSupervisedPrototypes()
    # (2, 2) is at squared distance 5 from every prototype: weight 1/3 each.
    refined = head.refine(SUPPORT, SUPPORT_LABELS, torch.tensor([[2.0, 2.0]], dtype=D64))
    third = 1 / 3
    expected = torch.tensor(
        [[2 + third * 2, third * 2], [third * 2, 6 + third * 2], [8 + third * 2, 6 + third * 2]], dtype=D64
    ) / (2 + third)
    torch.testing.assert_close(refined, expected)
    for unlabelled in (None, torch.zeros(0, 2, dtype=D64)):
        torch.testing.assert_close(
            head(SUPPORT, SUPPORT_LABELS, QUERY, unlabelled), PrototypicalNetworks()(SUPPORT, SUPPORT_LABELS, QUERY)
        )


def test_learnable_distractor_radius_gets_a_gradient():
    head = SemiSupervisedPrototypes("cluster", distractor_radius=2.0, learn_radius=True)
    support, labels, query = random_episode(6, dtype=torch.float32)
    logits = head(support, labels, query, torch.randn(5, 6))
    F.cross_entropy(logits, torch.arange(4).repeat_interleave(5)).backward()
    assert head.log_radius.grad is not None and head.distractor_radius == pytest.approx(2.0)


# ----------------------------------------------------------------------------------------------
# Hyperbolic prototypical networks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1.0, 0.05, 0.0])
def test_hyperbolic_prototypes_are_einstein_midpoints(c):
    support, labels, query = random_episode(7, dim=4)
    to_ball = HyperbolicProjection(c=c, clip_r=None) if c > 0 else (lambda x: x)
    support, query = to_ball(support), to_ball(query)
    head = HyperbolicPrototypicalNetworks(c=c, temperature=2.0)
    protos = head.prototypes(support, labels)
    one_hot = F.one_hot(labels).T.to(D64)
    torch.testing.assert_close(protos, einstein_midpoint(support, one_hot, c=c))
    expected = -dist(query[:, None], protos[None], c=c) / 2.0
    torch.testing.assert_close(head(support, labels, query), expected)


def test_hyperbolic_rejects_points_outside_the_ball():
    with pytest.raises(ValueError, match="outside the Poincaré ball"):
        HyperbolicPrototypicalNetworks(c=1.0)(SUPPORT, SUPPORT_LABELS, QUERY / 10)
    with pytest.raises(ValueError, match="c must be"):
        HyperbolicPrototypicalNetworks(c=-1.0)


# ----------------------------------------------------------------------------------------------
# batches of episodes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["protonet", "matching", "soft_kmeans", "hyperbolic_protonet"])
def test_batched_episodes_equal_one_at_a_time(name):
    episodes = [random_episode(10 + i, dim=5) for i in range(3)]
    support = torch.stack([e[0] for e in episodes]) * 0.2
    labels = torch.stack([e[1] for e in episodes])
    query = torch.stack([e[2] for e in episodes]) * 0.2
    unlabelled = torch.randn(3, 4, 5, dtype=D64) * 0.2
    head = make_classifier(name).double()
    extra = (unlabelled,) if head.uses_unlabelled else ()
    batched = head(support, labels, query, *extra)
    for b in range(3):
        single = head(support[b], labels[b], query[b], *(u[b] for u in extra))
        torch.testing.assert_close(batched[b], single)


# ----------------------------------------------------------------------------------------------
# episodic loss
# ----------------------------------------------------------------------------------------------
def test_split_support_query_takes_the_first_k_of_each_class():
    labels = torch.tensor([7, 3, 7, 3, 9, 7, 9, 3, 9])
    embeddings = torch.arange(9, dtype=D64).unsqueeze(1)  # embedding = batch position
    support, support_labels, query, query_labels, classes = split_support_query(embeddings, labels, k_shot=2)
    assert classes.tolist() == [3, 7, 9]
    assert support.flatten().tolist() == [1, 3, 0, 2, 4, 6]
    assert support_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert query.flatten().tolist() == [7, 5, 8] and query_labels.tolist() == [0, 1, 2]


def test_episodic_loss_is_the_cross_entropy_of_the_split_episode():
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(20, 8, generator=g, dtype=D64, requires_grad=True)
    labels = torch.arange(5).repeat(4)  # P = 5 classes, K = 4, interleaved
    for method, head in [("protonet", PrototypicalNetworks()), ("matching", MatchingNetworks())]:
        loss = EpisodicLoss(method, k_shot=1)(embeddings, labels)
        s, sl, q, ql, _ = split_support_query(embeddings, labels, 1)
        torch.testing.assert_close(loss, F.cross_entropy(head(s, sl, q), ql))
    loss.backward()
    assert torch.isfinite(embeddings.grad).all() and embeddings.grad.abs().sum() > 0


def test_episodic_loss_validates():
    embeddings, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="class 0 has 2 sample.*more than k_shot=2"):
        EpisodicLoss("protonet", k_shot=2)(embeddings, labels)
    with pytest.raises(ValueError, match="at least 2 classes"):
        EpisodicLoss(k_shot=1)(embeddings, torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="k_shot must be a positive integer"):
        EpisodicLoss(k_shot=0)
    with pytest.raises(ValueError, match="unknown few-shot method"):
        EpisodicLoss("relation")
    with pytest.raises(ValueError, match="one label per embedding"):
        split_support_query(embeddings, labels[:5], 1)


def test_fit_trains_episodically():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(6 * 5, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    data = TensorImageDataset(images, torch.arange(6).repeat_interleave(5), [str(i) for i in range(6)])
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    history = fit(
        model, EpisodicLoss("protonet", k_shot=2), data, steps=3, P=3, K=4, progress=False, log_every=1, device="cpu"
    )
    assert len(history.losses) == 3 and all(math.isfinite(v) for v in history.losses)
    with pytest.raises(ValueError, match="more than k_shot=4"):
        fit(model, EpisodicLoss("protonet", k_shot=4), data, steps=1, P=3, K=4, progress=False, device="cpu")


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def test_confidence_interval_formula():
    accuracies = [1.0, 0.6, 0.8, 0.8, 0.4]
    mean, half = confidence_interval(accuracies)
    assert mean == pytest.approx(0.72)
    assert half == pytest.approx(1.96 * np.std(accuracies) / math.sqrt(5))
    assert confidence_interval(torch.ones(3)) == (1.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        confidence_interval([])
    with pytest.raises(ValueError, match="NaN"):
        confidence_interval([0.5, float("nan")])


def clustered(num_classes=12, per_class=12, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 1.5
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return centres[labels] + torch.randn(labels.numel(), dim, generator=g), labels


def test_sample_episodes_match_the_episode_sampler():
    _, labels = clustered()
    episodes = sample_episodes(labels, 5, 2, 3, num_episodes=4, seed=11)
    reference = EpisodeSampler(labels, 5, 2, 3, 4, seed=11).episodes()
    assert episodes.support.tolist() == [e.support for e in reference]
    assert episodes.query.tolist() == [e.query for e in reference]
    assert episodes.classes.tolist() == [e.classes for e in reference]
    assert episodes.support_labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_semi_supervised_episode_layout():
    _, labels = clustered()
    ep = sample_episodes(labels, 4, 2, 3, num_episodes=6, seed=1, n_unlabelled=2, n_distractors=3)
    assert ep.unlabelled.shape == (6, 8) and ep.distractors.shape == (6, 6)
    for e in range(6):
        used = torch.cat([ep.support[e], ep.query[e], ep.unlabelled[e], ep.distractors[e]])
        assert used.unique().numel() == used.numel()  # no image twice
        unlabelled_classes = labels[ep.unlabelled[e]].reshape(4, 2)
        assert (unlabelled_classes == ep.classes[e][:, None]).all()
        assert not set(labels[ep.distractors[e]].tolist()) & set(ep.classes[e].tolist())
        assert (labels[ep.support[e]] == ep.classes[e][ep.support_labels]).all()
        assert (labels[ep.query[e]] == ep.classes[e][ep.query_labels]).all()
    with pytest.raises(ValueError, match="n_distractors needs n_unlabelled"):
        sample_episodes(labels, 4, 2, 3, 2, n_distractors=1)


def test_evaluate_embeddings_equals_a_loop_over_episodes():
    embeddings, labels = clustered()
    result = evaluate_embeddings(
        embeddings, labels, 5, 1, 4, num_episodes=30, method="protonet", seed=3, episodes_per_batch=7
    )
    episodes = sample_episodes(labels, 5, 1, 4, 30, seed=3)
    head = PrototypicalNetworks()
    loop = []
    for e in range(30):
        scores = head(embeddings[episodes.support[e]], episodes.support_labels, embeddings[episodes.query[e]])
        loop.append(float((scores.argmax(1) == episodes.query_labels).double().mean()))
    assert result["accuracies"] == pytest.approx(loop)
    mean, half = confidence_interval(loop)
    assert result["accuracy"] == pytest.approx(mean) and result["ci95"] == pytest.approx(half)
    assert result["num_episodes"] == 30 and result["k_shot"] == 1
    again = evaluate_embeddings(embeddings, labels, 5, 1, 4, num_episodes=30, method="protonet", seed=3)
    assert again["accuracies"] == result["accuracies"]
    other = evaluate_embeddings(embeddings, labels, 5, 1, 4, num_episodes=30, method="protonet", seed=4)
    assert other["accuracies"] != result["accuracies"]


def test_semi_supervised_evaluation_uses_the_same_episodes():
    embeddings, labels = clustered()
    common = dict(n_way=4, k_shot=1, n_query=3, num_episodes=20, seed=0, n_unlabelled=3, n_distractors=2)
    plain = evaluate_embeddings(embeddings, labels, method="protonet", **common)
    refined = evaluate_embeddings(embeddings, labels, method="soft_kmeans", **common)
    clean = evaluate_embeddings(embeddings, labels, method="soft_kmeans", use_distractors=False, **common)
    episodes = sample_episodes(labels, 4, 1, 3, 20, 0, 3, 2)
    head = SemiSupervisedPrototypes()
    for e in (0, 7):
        support = embeddings[episodes.support[e]]
        query = embeddings[episodes.query[e]]
        for result, pool in [
            (refined, torch.cat([episodes.unlabelled[e], episodes.distractors[e]])),
            (clean, episodes.unlabelled[e]),
        ]:
            scores = head(support, episodes.support_labels, query, embeddings[pool])
            assert result["accuracies"][e] == pytest.approx(
                float((scores.argmax(1) == episodes.query_labels).double().mean())
            )
        scores = PrototypicalNetworks()(support, episodes.support_labels, query)
        assert plain["accuracies"][e] == pytest.approx(
            float((scores.argmax(1) == episodes.query_labels).double().mean())
        )


def test_evaluate_episodes_embeds_once_and_normalises():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(8 * 6, 1, 4, 4, generator=g) * 255).to(torch.uint8)
    data = TensorImageDataset(images, torch.arange(8).repeat_interleave(6), [str(i) for i in range(8)])
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    result = evaluate_episodes(model, data, 3, 2, 2, num_episodes=10, method="matching", seed=1, normalize=True)
    with torch.no_grad():
        embeddings = model(data.get_batch(range(len(data)))[0])
    expected = evaluate_embeddings(F.normalize(embeddings, dim=1), data.labels, 3, 2, 2, 10, "matching", 1)
    assert result["accuracies"] == pytest.approx(expected["accuracies"])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="distance must be one of"):
        PrototypicalNetworks("manhattan")
    with pytest.raises(ValueError, match="temperature must be a positive"):
        MatchingNetworks(temperature=0.0)
    with pytest.raises(ValueError, match="distractor must be one of"):
        SemiSupervisedPrototypes("ignore")
    with pytest.raises(ValueError, match="num_steps"):
        SemiSupervisedPrototypes(num_steps=0)
    with pytest.raises(ValueError, match="mask_net is only used"):
        SemiSupervisedPrototypes("none", mask_net=nn.Linear(5, 2))
    with pytest.raises(ValueError, match="options are only accepted"):
        make_classifier(PrototypicalNetworks(), distance="cosine")
    head = PrototypicalNetworks()
    with pytest.raises(ValueError, match="has no support image of class 1"):
        head(SUPPORT, torch.tensor([0, 0, 2, 2, 2, 2]), QUERY)
    with pytest.raises(ValueError, match="support_labels must have shape"):
        head(SUPPORT, SUPPORT_LABELS[:4], QUERY)
    with pytest.raises(ValueError, match="query must have"):
        head(SUPPORT, SUPPORT_LABELS, torch.ones(2, 3, dtype=D64))
    with pytest.raises(ValueError, match="NaN"):
        head(SUPPORT, SUPPORT_LABELS, torch.full((1, 2), float("nan")))
    with pytest.raises(ValueError, match="integer tensor"):
        head(SUPPORT, SUPPORT_LABELS.float(), QUERY)
    embeddings, labels = clustered()
    with pytest.raises(ValueError, match="only 12 classes"):
        evaluate_embeddings(embeddings, labels, n_way=13, n_query=4)
    with pytest.raises(ValueError, match="num_episodes must be"):
        evaluate_embeddings(embeddings, labels, num_episodes=0)
    with pytest.raises(ValueError, match="one label per embedding"):
        evaluate_embeddings(embeddings, labels[:-1])


def test_paired_difference_and_table():
    a = {
        "accuracies": [1.0, 0.8, 0.6],
        "num_episodes": 3,
        "n_way": 5,
        "k_shot": 1,
        "n_query": 2,
        "accuracy": 0.8,
        "ci95": 0.1,
    }
    b = dict(a, accuracies=[0.8, 0.8, 0.2])
    mean, half = paired_difference(a, b)
    assert mean == pytest.approx(0.2) and half == pytest.approx(1.96 * np.std([0.2, 0.0, 0.4]) / math.sqrt(3))
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference(a, dict(b, k_shot=5))
    table = format_accuracy_table({"x": {"1-shot": a, "ρ": 0.12345}, "y": {"1-shot": None, "note": "+1.5"}})
    assert table.splitlines()[0] == "| method | 1-shot | ρ | note |"
    assert table.splitlines()[2] == "| x | 80.0 ± 10.0 | 0.123 | – |"
    assert table.splitlines()[3] == "| y | – | – | +1.5 |"
