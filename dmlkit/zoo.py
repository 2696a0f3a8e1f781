"""Every method of the kit, built with its paper's defaults, trained under one protocol.

The family notebooks (01 to 06) each compare their own methods; the synthesis notebook (07) puts
them side by side in one leaderboard, in the spirit of Musgrave, Belongie & Lim (ECCV 2020, "A
Metric Learning Reality Check") and Fehérvári, Ravichandran & Appalaraju ("Unbiased Evaluation of
Deep Metric Learning Algorithms", arXiv:1911.12528, 2019): one backbone (the ConvNet), one P×K
sampler, one optimiser and number of steps, several seeds, and the mean ± standard deviation of
each metric. :data:`METHODS` holds the recipe of each method (its loss with the paper's
hyper-parameters, the head and the retrieval distance it needs); :func:`train` runs one recipe
with :func:`dmlkit.experiment.run_method` and adds the per-class worst-case Recall@1 (the
fairness view of Dullerud et al., ICLR 2022); :func:`summarise_seeds` aggregates the runs over seeds
(:func:`dmlkit.reporting.leaderboard_table` prints them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dmlkit.experiment import Budget, RunResult, run_method
from dmlkit.optim import OptimizerRecipe

__all__ = [
    "Method",
    "RECIPES",
    "LEADERBOARD",
    "METHODS",
    "FAMILIES",
    "get_method",
    "train",
    "worst_class_metrics",
    "summarise_seeds",
]

#: The optimiser recipes of the official trainers (``Budget(recipe="paper")`` trains each method
#: with its own). The papers fine-tune ImageNet-pretrained networks at 1e-5 to 1e-4 (their
#: ``paper_lr``); the kit's ConvNet trains from scratch, so the backbone learning rate is the
#: budget's and only the rest — optimiser, ε, the head's and the loss parameters' learning rate
#: relative to the backbone's, weight decay per group, warm-up, schedule as fractions of the run,
#: clipping — is the paper's. Where a method has no trainer of its own, Roth et al.'s shared
#: protocol (the reference re-implementation of most of these losses) stands in.
_ROTH = OptimizerRecipe(
    "adam",
    weight_decay=4e-4,
    loss_weight_decay=0.0,
    paper_lr=1e-5,
    source="Roth et al., ICML 2020, Confusezius/Revisiting_Deep_Metric_Learning_PyTorch: parameters.py L16-18 "
    "(Adam, lr 1e-5, decay 4e-4), criteria/__init__.py L49-53 (no weight decay on loss parameters), "
    "main.py L169 (tau 1000 of 150 epochs: no decay)",
)
RECIPES: dict[str, OptimizerRecipe] = {
    "roth": _ROTH,
    "margin": replace(
        _ROTH,
        loss_lr_multiplier=50.0,
        source="Roth et al., ICML 2020, parameters.py L83-84: the margin loss's beta at lr 5e-4 = lr x50 "
        "(backbone 1e-5), Adam, decay 4e-4 on the network, 0 on beta",
    ),
    "ProxyNCA": replace(
        _ROTH,
        loss_lr_multiplier=50.0,
        source="no official code (Movshovitz-Attias et al., ICCV 2017); Roth et al.'s re-implementation, "
        "parameters.py L89: proxies at lr x50, Adam, decay 4e-4 on the network, 0 on the proxies",
    ),
    "ProxyNCA++": OptimizerRecipe(
        "adam",
        weight_decay=0.0,
        eps=1.0,
        loss_lr_multiplier=1e5,
        warmup=5 / 45,
        clip_grad_value=10.0,
        paper_lr=4e-3,
        source="Teh et al., ECCV 2020, euwern/proxynca_pp config/cub.json L32-48: Adam eps 1.0, lr 4e-3, "
        "proxies 4e2 = lr x1e5, weight decay 0; train.py L263-288: 5 warm-up epochs with the backbone frozen "
        "(before 40); L416: gradient values clipped at 10; its ReduceLROnPlateau on validation recall is not "
        "reproduced (constant)",
    ),
    "Proxy-Anchor": OptimizerRecipe(
        "adamw",
        weight_decay=1e-4,
        loss_lr_multiplier=100.0,
        warmup=1 / 60,
        milestones=(1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6),
        gamma=0.5,
        clip_grad_value=10.0,
        paper_lr=1e-4,
        source="Kim et al., CVPR 2020, tjddus9597/Proxy-Anchor-CVPR2020 code/train.py L241-242: proxies at "
        "lr x100; L254: AdamW, weight decay 1e-4 on every group (proxies too); L69-72: StepLR x0.5 every "
        "10 of 60 epochs; L275-287: 1 warm-up epoch with the backbone frozen; L298-300: gradient values "
        "clipped at 10",
    ),
    "SoftTriple": OptimizerRecipe(
        "adam",
        weight_decay=1e-4,
        eps=0.01,
        loss_lr_multiplier=100.0,
        milestones=(19 / 50, 39 / 50),
        gamma=0.1,
        paper_lr=1e-4,
        source="Qian et al., ICCV 2019, idstcv/SoftTriple train.py L38-46, L84-86: Adam eps 0.01, backbone "
        "1e-4, centres 1e-2 = lr x100, weight decay 1e-4 on every group; L176-180: x0.1 before epochs 19 "
        "and 39 of 50",
    ),
    "NormSoftmax": OptimizerRecipe(
        "sgd",
        weight_decay=1e-4,
        warmup=1 / 31,
        milestones=(16 / 31,),
        gamma=0.1,
        paper_lr=1e-3,
        source="Zhai & Wu, BMVC 2019, azgo14/classification_metric_learning train_classification.py "
        "L170-172, L211: SGD momentum 0.9, class weights at the backbone's lr (x1), weight decay 1e-4 on "
        "all; 1 pre-training epoch of the new layers only, then 30 epochs with x0.1 after 15 "
        "(README L68: CUB lr 1e-3)",
    ),
    "MS": OptimizerRecipe(
        "adam",
        weight_decay=5e-4,
        milestones=(0.4, 0.8),
        gamma=0.1,
        paper_lr=3e-5,
        source="Wang et al., CVPR 2019, msight-tech/research-ms-loss configs/example.yaml L13-18: Adam, "
        "lr 3e-5, weight decay 5e-4, 3000 iterations with x0.1 at 1200 and 2400, no warm-up",
    ),
    "FastAP": OptimizerRecipe(
        "adam",
        weight_decay=0.0,
        head_lr_multiplier=10.0,
        paper_lr=1e-5,
        source="Cakir et al., CVPR 2019, kunhe/FastAP-metric-learning matlab/get_opts.m L17-23: Adam, "
        "lr 1e-5, embedding layer at lr x10, weight decay 0, constant learning rate",
    ),
    "Smooth-AP": OptimizerRecipe(
        "adam",
        weight_decay=4e-4,
        head_lr_multiplier=5.0,
        milestones=(0.5, 0.75),
        gamma=0.3,
        paper_lr=1e-5,
        source="Brown et al., ECCV 2020, Andrew-Brown1/Smooth_AP src/main.py L37-47, L111-123: Adam, "
        "lr 1e-5, embedding layer at lr x5, weight decay 4e-4; x0.3 at epochs 200 and 300 of 400",
    ),
    "hyperbolic": OptimizerRecipe(
        "adamw",
        weight_decay=0.01,
        clip_grad_norm=3.0,
        paper_lr=3e-5,
        source="Ermolov et al., CVPR 2022, htdt/hyp_metric train.py L119: AdamW with torch's default weight "
        "decay 0.01, lr 3e-5 (README L31-33, CUB); L166: gradient norm clipped at 3; constant learning rate",
    ),
    "ProtoNet": OptimizerRecipe(
        "adam",
        weight_decay=0.0,
        paper_lr=1e-3,
        source="Snell et al., NeurIPS 2017, jakesnell/prototypical-networks scripts/train/few_shot/"
        "run_train.py: Adam, lr 1e-3, weight decay 0; its halving every 20 epochs of 100 episodes (2,000 "
        "steps) is not reproduced (constant)",
    ),
}

#: A loss's main hyper-parameter: ``(keyword of Method.make_loss, values to try)``.
Knob = tuple[str, tuple[float, ...]]

#: The families of methods, in the order the kit teaches them.
FAMILIES = ("pair-based", "proxy-based", "AP ranking", "SNR distance", "hyperbolic", "few-shot")


@dataclass(frozen=True)
class Method:
    """The recipe of one method.

    Args:
        name: label in tables and figures.
        family: its family of methods (one of :data:`FAMILIES`).
        make_loss: ``(num_classes, embedding_size) -> loss module`` with the paper's
            hyper-parameters (the class count and size matter only to proxy losses); for a
            ρ-regularisable recipe also a keyword ``p_switch``.
        distance: the retrieval distance of :func:`dmlkit.evaluate.retrieval_metrics`.
        curvature: for a Poincaré-ball model, its ``c``: the ConvNet gets a
            :class:`~dmlkit.geometry.HyperbolicProjection` head (clipping radius ``clip_r``) and
            retrieval ranks by the Poincaré distance ``d_c``.
        clip_r: feature clipping radius of the hyperbolic head.
        rho_regularizable: whether the loss takes Roth et al.'s ρ-regularisation (``make_loss(...,
            p_switch=...)``; the distance-weighted losses of
            :mod:`dmlkit.losses.pair_based.distance_weighted`).
        optimizer: the optimiser recipe of the method's official trainer (one of
            :data:`RECIPES`; its ``source`` says where it comes from), used when the budget asks
            for ``recipe="paper"``.
        note: the paper and the loss's hyper-parameters.
        knob: the loss's main hyper-parameter and the values the equal-budget search tries
            (:mod:`dmlkit.studies`): ``(keyword of make_loss, values)``, the paper's value among
            them.
        base_lr: the centre of the backbone learning rates the search tries (the kit trains
            from scratch, so the papers' fine-tuning rates do not apply). 1e-3 for the Adam
            family; NormSoftmax's SGD gets 1e-2, the best of 1e-3 … 0.3 in a 300-step pilot on
            validation classes (MAP@R 11.3, 17.5, 16.4, 14.3, 11.9 at 1e-3, 1e-2, 3e-2, 0.1, 0.3).
            ProxyNCA++'s Adam with ε = 1 was best at 1e-3 in the same pilot (17.3 against 9.5 at
            1e-2 and less above): its proxies' ×1e5 makes larger rates worse.
    """

    name: str
    family: str
    make_loss: Callable[[int, int], nn.Module]
    distance: str = "cosine"
    curvature: float | None = None
    clip_r: float | None = 2.3
    rho_regularizable: bool = False
    note: str = field(default="", compare=False)
    optimizer: OptimizerRecipe = field(default=RECIPES["roth"], compare=False)
    knob: Knob | None = field(default=None, compare=False)
    base_lr: float = field(default=1e-3, compare=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r} of {self.name!r}; families: {', '.join(FAMILIES)}")


def _methods() -> tuple[Method, ...]:
    from dmlkit.distances import DotProductSimilarity
    from dmlkit.few_shot import EpisodicLoss
    from dmlkit.losses import (
        CircleLoss,
        ContrastiveLoss,
        DistanceWeightedTripletLoss,
        FastAPLoss,
        LiftedStructureLoss,
        MarginLoss,
        MultiSimilarityLoss,
        NormalizedSoftmaxLoss,
        NPairsLoss,
        PairwiseCrossEntropyLoss,
        ProxyAnchorLoss,
        ProxyNCALoss,
        RankedListLoss,
        SignalToNoiseRatioContrastiveLoss,
        SmoothAPLoss,
        SoftTripleLoss,
        TripletMarginLoss,
    )

    def pair(
        name: str,
        make_loss: Callable[..., nn.Module],
        note: str,
        rho: bool = False,
        recipe: str = "roth",
        knob: Knob | None = None,
    ) -> Method:
        return Method(
            name, "pair-based", make_loss, rho_regularizable=rho, note=note, optimizer=RECIPES[recipe], knob=knob
        )

    def proxy(
        name: str, make_loss: Callable[..., nn.Module], note: str, knob: Knob | None = None, base_lr: float = 1e-3
    ) -> Method:
        return Method(name, "proxy-based", make_loss, note=note, optimizer=RECIPES[name], knob=knob, base_lr=base_lr)

    def ap(name: str, make_loss: Callable[..., nn.Module], note: str, knob: Knob | None = None) -> Method:
        return Method(name, "AP ranking", make_loss, note=note, optimizer=RECIPES[name], knob=knob)

    return (
        pair(
            "contrastive",
            lambda c, d, neg_margin=1.0: ContrastiveLoss(0.0, neg_margin),
            "Hadsell et al., CVPR 2006; PML margins 0 and 1",
            knob=("neg_margin", (0.6, 0.8, 1.0)),
        ),
        pair(
            "triplet semihard", lambda c, d: TripletMarginLoss(0.2, "semihard"), "Schroff et al., CVPR 2015; margin 0.2"
        ),
        pair(
            "triplet batch-hard",
            lambda c, d, margin=0.2: TripletMarginLoss(margin, "batch_hard"),
            "Hermans et al., 2017; margin 0.2",
            knob=("margin", (0.1, 0.2, 0.4)),
        ),
        pair("lifted structure", lambda c, d: LiftedStructureLoss(), "Oh Song et al., CVPR 2016"),
        pair(
            "N-pairs",
            lambda c, d: NPairsLoss(DotProductSimilarity(normalize_embeddings=False), l2_reg_weight=0.001),
            "Sohn, NeurIPS 2016: raw inner products, L2 penalty (TensorFlow's npairs_loss reg_lambda 0.002)",
        ),
        pair(
            "MS",
            lambda c, d, beta=40.0: MultiSimilarityLoss(beta=beta, epsilon=0.1),
            "Wang et al., CVPR 2019; alpha 2, beta 40, lambda 0.5, mining epsilon 0.1",
            recipe="MS",
            knob=("beta", (20.0, 40.0, 60.0)),
        ),
        pair("ranked list", lambda c, d: RankedListLoss(), "Wang et al., CVPR 2019"),
        pair(
            "circle",
            lambda c, d, m=0.4: CircleLoss(m=m),
            "Sun et al., CVPR 2020; m 0.4, gamma 80",
            knob=("m", (0.25, 0.4, 0.55)),
        ),
        pair(
            "margin (distance-weighted)",
            lambda c, d, p_switch=0.0: MarginLoss(c, margin=0.2, beta=1.2, p_switch=p_switch),
            "Wu et al., ICCV 2017; alpha 0.2, beta 1.2 learned per class; Roth et al.'s rho_distance sampler",
            rho=True,
            recipe="margin",
        ),
        pair(
            "triplet (distance-weighted)",
            lambda c, d, p_switch=0.0: DistanceWeightedTripletLoss(margin=0.2, p_switch=p_switch),
            "Roth et al., ICML 2020: triplet loss, margin 0.2, on the rho_distance sampler",
            rho=True,
        ),
        proxy(
            "ProxyNCA",
            lambda c, d: ProxyNCALoss(c, d, exclude_positive_from_denominator=True),
            "Movshovitz-Attias et al., ICCV 2017",
        ),
        proxy(
            "ProxyNCA++",
            lambda c, d, softmax_scale=9.0: ProxyNCALoss.proxynca_plus_plus(c, d, softmax_scale=softmax_scale),
            "Teh et al., ECCV 2020; scale 9",
            knob=("softmax_scale", (4.0, 9.0, 16.0)),
        ),
        proxy(
            "Proxy-Anchor",
            lambda c, d, alpha=32.0: ProxyAnchorLoss(c, d, alpha=alpha),
            "Kim et al., CVPR 2020; alpha 32, delta 0.1",
            knob=("alpha", (16.0, 32.0, 64.0)),
        ),
        proxy(
            "SoftTriple",
            lambda c, d, la=20.0: SoftTripleLoss(c, d, la=la),
            "Qian et al., ICCV 2019; K 10, lambda 20, gamma 0.1, tau 0.2, margin 0.01",
            knob=("la", (10.0, 20.0, 40.0)),
        ),
        proxy(
            "NormSoftmax",
            lambda c, d, temperature=0.05: NormalizedSoftmaxLoss(c, d, temperature=temperature),
            "Zhai & Wu, BMVC 2019; temperature 0.05",
            knob=("temperature", (0.025, 0.05, 0.1)),
            base_lr=1e-2,
        ),
        ap(
            "FastAP",
            lambda c, d, num_bins=10: FastAPLoss(num_bins=int(num_bins)),
            "Cakir et al., CVPR 2019; 10 bins",
            knob=("num_bins", (5, 10, 20)),
        ),
        ap(
            "Smooth-AP",
            lambda c, d, temperature=0.01: SmoothAPLoss(temperature=temperature),
            "Brown et al., ECCV 2020",
            knob=("temperature", (0.005, 0.01, 0.02)),
        ),
        Method(
            "contrastive · SNR",
            "SNR distance",
            lambda c, d, neg_margin=1.0: SignalToNoiseRatioContrastiveLoss(0.0, neg_margin),
            note="Yuan et al., CVPR 2019; margins 0 and 1",
            knob=("neg_margin", (0.5, 1.0, 1.5)),
        ),
        Method(
            "hyperbolic",
            "hyperbolic",
            lambda c, d, temperature=0.2: PairwiseCrossEntropyLoss(c=0.1, temperature=temperature),
            distance="euclidean",
            curvature=0.1,
            note="Ermolov et al., CVPR 2022; c 0.1, clip 2.3, tau 0.2",
            optimizer=RECIPES["hyperbolic"],
            knob=("temperature", (0.1, 0.2, 0.4)),
        ),
        Method(
            "spherical",
            "hyperbolic",
            lambda c, d: PairwiseCrossEntropyLoss(c=0.0),
            note="Ermolov et al.; tau 0.1",
            optimizer=RECIPES["hyperbolic"],
        ),
        Method(
            "ProtoNet (episodic)",
            "few-shot",
            lambda c, d, k_shot=1: EpisodicLoss("protonet", k_shot=int(k_shot)),
            note="Snell et al., NeurIPS 2017; a P x K batch is a P-way 1-shot episode",
            optimizer=RECIPES["ProtoNet"],
            knob=("k_shot", (1, 2, 3)),
        ),
    )


#: Every method, in notebook order.
METHODS: tuple[Method, ...] = _methods()

#: The methods of notebook 07's leaderboard: one or more of every family.
LEADERBOARD: tuple[str, ...] = (
    "contrastive",
    "triplet batch-hard",
    "MS",
    "circle",
    "ProxyNCA++",
    "Proxy-Anchor",
    "SoftTriple",
    "NormSoftmax",
    "FastAP",
    "Smooth-AP",
    "contrastive · SNR",
    "hyperbolic",
    "ProtoNet (episodic)",
)


def get_method(name: str) -> Method:
    """The recipe called ``name`` (a clear error lists the known names)."""
    for method in METHODS:
        if method.name == name:
            return method
    raise KeyError(f"unknown method {name!r}; known: {[m.name for m in METHODS]}")


def worst_class_metrics(
    embeddings: Tensor, labels: Tensor, distance: str = "cosine", curvature: float | None = None, fraction: float = 0.1
) -> dict[str, float]:
    """Mean-class and worst-class Recall@1 (the worst ``fraction`` of the classes) of one embedding,
    ranked by ``distance`` or, with ``curvature``, by the Poincaré distance ``d_c``
    (:func:`dmlkit.evaluate.worst_class_gap`)."""
    from dmlkit.evaluate import per_class_recall_at_1, summarise_per_class
    from dmlkit.geometry.retrieval import hyperbolic_per_class_recall_at_1

    if curvature is None:
        per_class = per_class_recall_at_1(embeddings, labels, distance=distance)
    else:
        per_class = hyperbolic_per_class_recall_at_1(embeddings, labels, c=curvature)
    summary = summarise_per_class(per_class, labels, fraction)
    return {
        "mean_class_recall@1": summary["mean_class_recall@1"],
        "worst_class_recall@1": summary["worst_class_recall@1"],
    }


def train(
    method: Method | str,
    train_data: Any,
    test_data: Any,
    budget: Budget,
    seed: int = 0,
    model_fn: Callable[[int], nn.Module] | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    settings: dict[str, float] | None = None,
    monitor: Any = None,
) -> RunResult:
    """Train one method under ``budget`` and evaluate it, with the worst-class Recall@1 added to
    ``test_metrics``.

    The loss is built after :func:`dmlkit.seed_everything` (``seed``), so its parameters (proxies)
    start from the same stream in every run of that seed. ``model_fn(embedding_size)`` builds the
    backbone (default: :func:`dmlkit.models.default_model` for ``train_data``); a hyperbolic method
    gets the ball head on top of it, and its periodic evaluations (``budget.eval_every``) as its
    final metrics rank by the Poincaré distance. ``budget.p_switch`` > 0 builds the loss with that switch
    probability (ρ-regularisation) and raises for a recipe that does not take one.
    ``budget.recipe="paper"`` trains with the method's own optimiser recipe (``method.optimizer``).
    ``settings`` sets the loss's main hyper-parameter (``{method.knob[0]: value}``); any other
    keyword is an error. ``monitor`` (:class:`dmlkit.live.TrainingMonitor`) redraws the run's
    loss and held-out metrics while it trains (:func:`dmlkit.experiment.run_method`).
    """
    from dmlkit.geometry import HyperbolicProjection
    from dmlkit.geometry.retrieval import hyperbolic_retrieval_metrics, with_hyperbolic_metrics
    from dmlkit.models import default_model
    from dmlkit.utils import seed_everything

    method = get_method(method) if isinstance(method, str) else method
    if budget.p_switch > 0 and not method.rho_regularizable:
        raise ValueError(
            f"p_switch={budget.p_switch}: ρ-regularisation needs a distance-weighted recipe "
            f"({', '.join(m.name for m in METHODS if m.rho_regularizable)}); {method.name!r} does not take one"
        )
    backbone = model_fn or (lambda size: default_model(train_data, size))
    if method.curvature is not None:
        curvature, clip_r = method.curvature, method.clip_r
        build = lambda size: nn.Sequential(backbone(size), HyperbolicProjection(c=curvature, clip_r=clip_r))  # noqa: E731
    else:
        build = backbone
    seed_everything(seed)
    options = {"p_switch": budget.p_switch} if budget.p_switch > 0 else {}
    if settings:
        allowed = {method.knob[0]} if method.knob else set()
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(
                f"unknown setting(s) {sorted(unknown)} of {method.name!r}; it takes "
                + (f"{sorted(allowed)}" if allowed else "none")
            )
        options.update(settings)
    loss = method.make_loss(train_data.num_classes, budget.embedding_size, **options)
    eval_metrics_fn = None
    if method.curvature is not None:
        ball_c = method.curvature

        def eval_metrics_fn(embeddings: Tensor, labels: Tensor) -> dict[str, float]:
            return hyperbolic_retrieval_metrics(embeddings, labels, ball_c)

    result = run_method(
        method.name,
        loss,
        train_data,
        test_data,
        budget,
        seed=seed,
        model_fn=build,
        distance=method.distance,
        progress=progress,
        device=device,
        recipe=method.optimizer if budget.recipe == "paper" else None,
        eval_metrics_fn=eval_metrics_fn,
        monitor=monitor,
    )
    if method.curvature is not None:
        result = with_hyperbolic_metrics(result, method.curvature)
    worst = worst_class_metrics(result.test_embeddings, result.test_labels, method.distance, method.curvature)
    return replace(
        result, test_metrics={**result.test_metrics, **worst}, settings={**result.settings, "family": method.family}
    )


def summarise_seeds(rows: Iterable[dict[str, Any]], keys: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation over seeds.

    ``rows`` are dicts with a ``"method"`` name and numeric entries (one dict per run, e.g.
    ``{"method": r.name, **r.row()}``); the result maps each method (first-seen order) to
    ``{key: mean, key + "_std": std, "seeds": n}`` for every numeric ``key`` (or the given
    ``keys``). The standard deviation uses ``n - 1`` (NaN for a single seed).
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if "method" not in row:
            raise ValueError(f"each row needs a 'method' entry, got keys {sorted(row)}")
        grouped.setdefault(str(row["method"]), []).append(row)
    if not grouped:
        raise ValueError("no rows to summarise")
    summary: dict[str, dict[str, float]] = {}
    for name, group in grouped.items():
        names = keys or [
            k for k, v in group[0].items() if k != "method" and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        entry: dict[str, float] = {"seeds": float(len(group))}
        for key in names:
            values = np.array([float(g[key]) for g in group if key in g], dtype=np.float64)
            if values.size == 0:
                raise ValueError(f"no run of {name!r} has {key!r}")
            entry[key] = float(values.mean())
            entry[key + "_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
        summary[name] = entry
    return summary
