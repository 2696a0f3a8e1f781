"""The kit's one protocol: train a method, evaluate it on held-out classes, record everything.

Every family notebook compares its methods with :func:`run_method` under the same
:class:`Budget` (ConvNet, P×K sampler, optimiser, steps), so their numbers can be set side by
side — the point of Musgrave et al. (ECCV 2020, "A Metric Learning Reality Check"). A
:class:`RunResult` holds the trained model, the embeddings of the training and the held-out
classes, the retrieval metrics on both, ρ and the embedding density; :func:`results_table` and
:func:`save_results` turn a list of them into a Markdown table and a JSON file.
"""

from __future__ import annotations

import json
import math
import numbers
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dmlkit.analysis import embedding_density, spectral_decay
from dmlkit.data_fit import evaluation_sample
from dmlkit.evaluate import embed, nmi, retrieval_metrics
from dmlkit.files import atomic_write_text
from dmlkit.models import ConvNet
from dmlkit.optim import OptimizerRecipe
from dmlkit.train import History, fit

__all__ = [
    "Budget",
    "RunResult",
    "protocol",
    "load_data",
    "run_method",
    "evaluate_run",
    "new_embedder",
    "save_results",
]

#: Glyph-set size of the smoke budget: enough classes for P×K batches, small enough for seconds.
SMOKE_GLYPHS = {"num_classes": 40, "images_per_class": 10}

#: Images per class of every other data set at the smoke budget (a seeded, class-stratified sample).
SMOKE_IMAGES_PER_CLASS = 40


@dataclass
class Budget:
    """Training settings shared by every method of a comparison.

    ``loss_lr`` is the learning rate of loss parameters (proxies); ``None`` means ``lr``.
    ``eval_every`` adds periodic held-out evaluations to the history (0: only at the end).
    ``p_switch``: Roth et al.'s ρ-regularisation, the switch probability a recipe's loss is
    built with (:func:`dmlkit.zoo.train`; the distance-weighted losses of
    :mod:`dmlkit.losses.pair_based.distance_weighted` take it); a loss given to
    :func:`run_method` must carry it already.
    ``recipe``: ``"shared"`` trains every method with one AdamW (``lr``, ``loss_lr``,
    ``weight_decay``), the kit's protocol; ``"paper"`` gives each :mod:`dmlkit.zoo` method the
    optimiser recipe of its official trainer (:data:`dmlkit.zoo.RECIPES`), with ``lr`` as the
    backbone's learning rate and the recipe's own weight decay and learning-rate multipliers in
    place of ``weight_decay`` and ``loss_lr`` (so ``loss_lr`` must stay ``None``).
    """

    steps: int = 1000
    P: int = 32
    K: int = 4
    lr: float = 1e-3
    loss_lr: float | None = None
    weight_decay: float = 1e-4
    embedding_size: int = 64
    augment: bool = True
    eval_every: int = 0
    p_switch: float = 0.0
    recipe: str = "shared"
    eval_images: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "P", "K", "embedding_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Budget.{name} must be a positive integer, got {value!r}")
        if (
            isinstance(self.eval_every, bool)
            or not isinstance(self.eval_every, numbers.Integral)
            or self.eval_every < 0
        ):
            raise ValueError(f"Budget.eval_every must be a non-negative integer, got {self.eval_every!r}")
        for name in ("lr", "weight_decay") + (("loss_lr",) if self.loss_lr is not None else ()):
            value = getattr(self, name)
            if (
                not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
                or (name != "weight_decay" and value == 0)
            ):
                raise ValueError(f"Budget.{name} must be a positive finite number, got {value!r}")
        if not isinstance(self.p_switch, numbers.Real) or not 0.0 <= float(self.p_switch) <= 1.0:
            raise ValueError(f"Budget.p_switch must lie in [0, 1], got {self.p_switch!r}")
        if self.eval_images is not None and (
            isinstance(self.eval_images, bool)
            or not isinstance(self.eval_images, numbers.Integral)
            or self.eval_images < 4
        ):
            raise ValueError(f"Budget.eval_images must be None or an integer of at least 4, got {self.eval_images!r}")
        if self.recipe not in ("shared", "paper"):
            raise ValueError(f"Budget.recipe must be 'shared' or 'paper', got {self.recipe!r}")
        if self.recipe == "paper" and self.loss_lr is not None:
            raise ValueError(
                f"Budget.loss_lr={self.loss_lr} with recipe='paper': each paper's recipe sets the loss parameters' "
                "learning rate relative to lr; leave loss_lr None"
            )

    def with_(self, **changes: Any) -> Budget:
        """A copy with some settings changed."""
        values = asdict(self)
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"unknown budget setting(s) {sorted(unknown)}; known: {sorted(values)}")
        values.update(changes)
        return Budget(**values)


def protocol(smoke: bool = False) -> Budget:
    """The default budget of the kit's notebooks (a few minutes per notebook on a laptop CPU),
    or the smoke budget that only proves a notebook runs end to end."""
    if smoke:
        return Budget(steps=15, P=16, K=4, eval_every=0)
    return Budget()


def load_data(name: str = "glyphs", smoke: bool = False, **options: Any) -> tuple[Any, Any]:
    """The (train, held-out) pair of a comparison: ``load(name, "train")`` and
    ``load(name, "test")`` with the same options (class-disjoint by default). With ``smoke`` the
    glyph set shrinks to :data:`SMOKE_GLYPHS`, and any other data set to a seeded sample of
    :data:`SMOKE_IMAGES_PER_CLASS` images of each class, so a notebook runs end to end in seconds."""
    from dmlkit.data import load

    if smoke and name == "glyphs":
        options = {**SMOKE_GLYPHS, **options}
    train, test = load(name, split="train", **options), load(name, split="test", **options)
    if smoke and name != "glyphs":
        train = evaluation_sample(train, SMOKE_IMAGES_PER_CLASS * train.num_classes)
        test = evaluation_sample(test, SMOKE_IMAGES_PER_CLASS * test.num_classes)
    return train, test


@dataclass
class RunResult:
    """One trained method and what was measured on it."""

    name: str
    model: nn.Module
    loss: nn.Module
    history: History
    train_embeddings: torch.Tensor
    train_labels: torch.Tensor
    test_embeddings: torch.Tensor
    test_labels: torch.Tensor
    train_metrics: dict[str, float]
    test_metrics: dict[str, float]
    rho: float
    density: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_step(self) -> float:
        return self.history.seconds_per_step

    def row(self) -> dict[str, float]:
        """The numbers of a results table (held-out metrics unless prefixed ``train_``)."""
        row = dict(self.test_metrics)
        row["rho"] = self.rho
        row["density"] = self.density
        row["train_map@r"] = self.train_metrics["map@r"]
        row["gap_map@r"] = self.train_metrics["map@r"] - self.test_metrics["map@r"]
        row["train_s"] = self.history.train_seconds
        row["ms_per_step"] = 1e3 * self.history.seconds_per_step
        return row


def run_method(
    name: str,
    loss: nn.Module,
    train_data: Any,
    test_data: Any,
    budget: Budget,
    seed: int = 0,
    model: nn.Module | None = None,
    model_fn: Callable[[int], nn.Module] | None = None,
    embed_fn: Callable[[nn.Module, Any], tuple[Tensor, Tensor]] | None = None,
    distance: str = "cosine",
    with_nmi: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    recipe: OptimizerRecipe | None = None,
    eval_metrics_fn: Callable[[Tensor, Tensor], dict[str, float]] | None = None,
    monitor: Any = None,
) -> RunResult:
    """Train ``loss`` under ``budget`` and evaluate on the training and held-out classes.

    Args:
        name: label of the method in tables and figures.
        loss: the loss module (with its own parameters, if any).
        train_data, test_data: datasets with ``.labels`` (class-disjoint in the DML protocol).
        budget: the shared :class:`Budget`.
        seed: seeds the model initialisation, sampler and augmentation.
        model: an embedder to train; by default a fresh :class:`~dmlkit.models.ConvNet` (or
            ``model_fn(embedding_size)``) created after seeding, so every method starts from the
            same weights for the same seed.
        embed_fn: ``(model, data) -> (embeddings, labels)``; default :func:`dmlkit.evaluate.embed`.
        distance: retrieval distance (``"cosine"`` or ``"euclidean"``).
        with_nmi: also compute NMI of k-means on the held-out embeddings (slower).
        device: training device (default: CUDA when available).
        progress: show a progress bar.
        recipe: an optimiser recipe (:class:`dmlkit.optim.OptimizerRecipe`) for
            ``budget.recipe="paper"``, which needs one; its weight decay replaces the budget's.
        eval_metrics_fn: ``(embeddings, labels) -> metrics`` of the periodic evaluations
            (``budget.eval_every``); default :func:`dmlkit.evaluate.retrieval_metrics` with
            ``distance``. A Poincaré-ball model passes its hyperbolic metrics here
            (:func:`dmlkit.zoo.train` does), so its curve ranks as its final metrics do.
        monitor: a :class:`dmlkit.live.TrainingMonitor`: the loss and the held-out metrics of
            every ``budget.eval_every`` redrawn in place while it trains (live in JupyterLab).
    """
    from dmlkit.utils import seed_everything

    if budget.recipe == "paper" and recipe is None:
        raise ValueError("Budget.recipe='paper' needs an optimiser recipe (dmlkit.zoo.train passes each method's)")
    if budget.recipe == "shared" and recipe is not None:
        raise ValueError("an optimiser recipe was given with Budget.recipe='shared'; use Budget(recipe='paper')")

    if budget.p_switch > 0 and getattr(loss, "p_switch", None) != budget.p_switch:
        raise ValueError(
            f"Budget.p_switch={budget.p_switch} but the loss {type(loss).__name__} was not built with it: "
            "ρ-regularisation is a constructor option of the distance-weighted losses "
            "(MarginLoss(..., p_switch=...), DistanceWeightedTripletLoss(p_switch=...)); see dmlkit.zoo.train"
        )
    train_eval = evaluation_sample(train_data, budget.eval_images)
    test_eval = evaluation_sample(test_data, budget.eval_images)
    seed_everything(seed)
    if model is None:
        model = model_fn(budget.embedding_size) if model_fn else ConvNet(budget.embedding_size)
    embed_fn = embed_fn or embed
    eval_fn = None
    if budget.eval_every:

        def eval_fn(m: nn.Module) -> dict[str, float]:
            e, l = embed_fn(m, test_eval)
            metrics = eval_metrics_fn(e, l) if eval_metrics_fn else retrieval_metrics(e, l, distance=distance)
            metrics["rho"] = spectral_decay(e)
            return {k: float(v) for k, v in metrics.items()}

    history = fit(
        model,
        loss,
        train_data,
        steps=budget.steps,
        P=budget.P,
        K=budget.K,
        lr=budget.lr,
        loss_lr=budget.loss_lr,
        weight_decay=None if recipe is not None else budget.weight_decay,
        recipe=recipe,
        augment=budget.augment,
        eval_every=budget.eval_every or None,
        eval_fn=eval_fn,
        seed=seed,
        device=device,
        progress=progress,
        description=name,
        monitor=monitor,
    )
    return evaluate_run(
        name,
        model,
        loss,
        history,
        train_eval,
        test_eval,
        budget,
        seed,
        distance=distance,
        embed_fn=embed_fn,
        with_nmi=with_nmi,
    )


def new_embedder(
    train_data: Any, budget: Budget, seed: int, model_fn: Callable[[int], nn.Module] | None = None
) -> nn.Module:
    """A fresh embedder for a run of ``seed``: ``model_fn(budget.embedding_size)``, by default
    :func:`dmlkit.models.default_model` for ``train_data``, created right after seeding, so every
    method of a seed starts from the same weights."""
    from dmlkit.models import default_model
    from dmlkit.utils import seed_everything

    seed_everything(seed)
    return model_fn(budget.embedding_size) if model_fn else default_model(train_data, budget.embedding_size)


def evaluate_run(
    name: str,
    model: nn.Module,
    loss: nn.Module,
    history: History,
    train_data: Any,
    test_data: Any,
    budget: Budget,
    seed: int,
    distance: str = "cosine",
    embed_fn: Callable[[nn.Module, Any], tuple[Tensor, Tensor]] | None = None,
    with_nmi: bool = False,
    settings: dict[str, Any] | None = None,
) -> RunResult:
    """The :class:`RunResult` of a trained ``model``: its embeddings of the training and held-out
    data (each sampled to ``budget.eval_images``, :func:`~dmlkit.data_fit.evaluation_sample`;
    an already sampled set is kept as it is), retrieval metrics on both, ρ and the density on the
    training classes. :func:`run_method` ends with it; so does any other training loop under the
    kit's protocol (:mod:`dmlkit.self_supervised`, :mod:`dmlkit.semi_supervised`). ``settings``
    are added to the budget's in the result."""
    embed_fn = embed_fn or embed
    train_eval = evaluation_sample(train_data, budget.eval_images)
    test_eval = evaluation_sample(test_data, budget.eval_images)
    train_embeddings, train_labels = embed_fn(model, train_eval)
    test_embeddings, test_labels = embed_fn(model, test_eval)
    train_metrics = {
        k: float(v) for k, v in retrieval_metrics(train_embeddings, train_labels, distance=distance).items()
    }
    test_metrics = {k: float(v) for k, v in retrieval_metrics(test_embeddings, test_labels, distance=distance).items()}
    if with_nmi:
        test_metrics["nmi"] = float(nmi(test_embeddings, test_labels, seed=seed))
    return RunResult(
        name=name,
        model=model,
        loss=loss,
        history=history,
        train_embeddings=train_embeddings,
        train_labels=train_labels,
        test_embeddings=test_embeddings,
        test_labels=test_labels,
        train_metrics=train_metrics,
        test_metrics=test_metrics,
        rho=spectral_decay(train_embeddings),
        density=embedding_density(train_embeddings, train_labels),
        settings={
            **asdict(budget),
            "seed": seed,
            "distance": distance,
            **({"interrupted_at": history.interrupted_at} if history.interrupted_at is not None else {}),
            **(settings or {}),
        },
    )


def save_results(
    results: Sequence[RunResult],
    out_dir: str | Path,
    notebook: str,
    settings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``results.json`` (metrics, ρ, times and settings of every run) to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "notebook": notebook,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "processor": platform.machine()},
        "settings": settings or {},
        "methods": {
            r.name: {
                "test": r.test_metrics,
                "train": r.train_metrics,
                **{k: v for k, v in r.row().items() if k not in r.test_metrics},
                "settings": r.settings,
            }
            for r in results
        },
        **(extra or {}),
    }
    path = out_dir / "results.json"
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=float) + "\n")
    return path
