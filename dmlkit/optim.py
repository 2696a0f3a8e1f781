"""Optimiser recipes: how each paper's official trainer sets learning rates, decay and warm-up.

A recipe holds the *structure* of a paper's optimiser — which optimiser, the learning rate of
the embedding head and of the loss's own parameters (proxies, class centres, the margin loss's
β) relative to the backbone's, weight decay per group, warm-up with a frozen backbone, the
step schedule and gradient clipping — and not its absolute backbone learning rate. The papers
fine-tune an ImageNet-pretrained network at 1e-5 to 1e-4; the kit trains a small ConvNet from
scratch, whose base learning rate is tuned on validation classes instead
(:mod:`dmlkit.studies`). Epoch-based settings become fractions of the run, so a recipe scales
to any number of steps: Proxy-Anchor's "×0.5 every 10 of 60 epochs" is ``milestones=(1/6, 2/6,
…, 5/6)``, ``gamma=0.5``.

:func:`parameter_groups` splits a model and a loss into the three groups (``backbone``,
``head``: the parameters of every :class:`~dmlkit.models.EmbeddingHead`, ``loss``);
:func:`build_optimizer` makes the torch optimiser; :func:`lr_factor` is the schedule;
:func:`apply_warmup` drops the backbone's gradients during warm-up. :func:`dmlkit.train.fit`
uses all four.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dmlkit.checks import check_choice, check_non_negative, check_positive

__all__ = [
    "OPTIMIZERS",
    "OptimizerRecipe",
    "parameter_groups",
    "build_optimizer",
    "lr_factor",
    "warmup_steps",
    "set_learning_rates",
    "apply_warmup",
    "clip_gradients",
]

#: The optimisers a recipe can name (SGD with momentum 0.9, as every DML trainer that uses it).
OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass(frozen=True)
class OptimizerRecipe:
    """The optimiser settings of one method, as its official trainer has them.

    Args:
        optimizer: ``"adamw"`` (decoupled weight decay), ``"adam"`` (L2 added to the gradient,
            as torch's Adam does) or ``"sgd"`` (momentum 0.9).
        weight_decay: weight decay of the backbone and the head.
        loss_weight_decay: weight decay of the loss's parameters; ``None``: ``weight_decay``
            (a trainer that passes one global value to the optimiser decays proxies too).
        eps: Adam's ε (ProxyNCA++ uses 1.0, SoftTriple 0.01; torch's default 1e-8).
        head_lr_multiplier: learning rate of the embedding head over the backbone's.
        loss_lr_multiplier: learning rate of the loss's parameters over the backbone's.
        warmup: fraction of the steps at the start during which the backbone is frozen (only the
            head and the loss's parameters train), as Proxy-Anchor's ``--warm`` and ProxyNCA++'s
            ``warmup_k`` do. The backbone's BatchNorm statistics still update.
        milestones: fractions of the run (in (0, 1], increasing) at each of which every learning
            rate is multiplied by ``gamma``.
        gamma: the factor of each milestone.
        clip_grad_value: clip every gradient entry to ±this (Proxy-Anchor: 10).
        clip_grad_norm: clip the global gradient norm of all trained parameters to this
            (Ermolov et al.: 3).
        paper_lr: the backbone learning rate of the paper's trainer, for the record (not used:
            the kit tunes its own base learning rate).
        source: where the settings come from (repository, file, lines).
    """

    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    loss_weight_decay: float | None = None
    eps: float = 1e-8
    head_lr_multiplier: float = 1.0
    loss_lr_multiplier: float = 1.0
    warmup: float = 0.0
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    clip_grad_value: float | None = None
    clip_grad_norm: float | None = None
    paper_lr: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_non_negative("weight_decay", self.weight_decay)
        if self.loss_weight_decay is not None:
            check_non_negative("loss_weight_decay", self.loss_weight_decay)
        check_positive("eps", self.eps)
        check_positive("head_lr_multiplier", self.head_lr_multiplier)
        check_positive("loss_lr_multiplier", self.loss_lr_multiplier)
        if not isinstance(self.warmup, (int, float)) or not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be a fraction of the run in [0, 1), got {self.warmup!r}")
        milestones = tuple(self.milestones)
        if any(not 0.0 < m <= 1.0 for m in milestones) or any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError(f"milestones must be increasing fractions of the run in (0, 1], got {milestones!r}")
        check_positive("gamma", self.gamma)
        for name in ("clip_grad_value", "clip_grad_norm", "paper_lr"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))

    @property
    def loss_parameters_decay(self) -> float:
        """The weight decay the loss's parameters get."""
        return self.weight_decay if self.loss_weight_decay is None else self.loss_weight_decay

    def learning_rates(self, lr: float) -> dict[str, float]:
        """The initial learning rate of each group for a backbone learning rate ``lr``."""
        return {"backbone": lr, "head": lr * self.head_lr_multiplier, "loss": lr * self.loss_lr_multiplier}


def _head_parameters(model: nn.Module) -> list[nn.Parameter]:
    from dmlkit.models import EmbeddingHead

    found: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, EmbeddingHead):
            for p in module.parameters():
                found[id(p)] = p
    return list(found.values())


def parameter_groups(model: nn.Module, loss: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The trainable parameters of ``model`` and ``loss`` in three groups: ``head`` (every
    :class:`~dmlkit.models.EmbeddingHead` of the model), ``backbone`` (the rest of the model) and
    ``loss``. A parameter shared by the model and the loss counts as the model's."""
    head = [p for p in _head_parameters(model) if p.requires_grad]
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    model_ids = head_ids | {id(p) for p in backbone}
    loss_parameters = [p for p in loss.parameters() if p.requires_grad and id(p) not in model_ids]
    return {"backbone": backbone, "head": head, "loss": loss_parameters}


def build_optimizer(
    recipe: OptimizerRecipe,
    groups: dict[str, list[nn.Parameter]],
    lr: float,
    loss_lr: float | None = None,
) -> torch.optim.Optimizer:
    """The torch optimiser of ``recipe`` for the groups of :func:`parameter_groups`.

    ``lr`` is the backbone's learning rate; the head gets ``lr × head_lr_multiplier`` and the
    loss's parameters ``loss_lr`` if given, else ``lr × loss_lr_multiplier``. Each torch param
    group carries its ``name`` and its initial learning rate as ``initial_lr``. When the head and
    the backbone have the same settings they form one group (the same optimiser, in fewer
    groups).
    """
    check_positive("lr", lr)
    if loss_lr is not None:
        check_positive("loss_lr", loss_lr)
    rates = recipe.learning_rates(lr)
    if loss_lr is not None:
        rates["loss"] = loss_lr
    decay = {"backbone": recipe.weight_decay, "head": recipe.weight_decay, "loss": recipe.loss_parameters_decay}
    torch_groups: list[dict[str, Any]] = []
    if rates["head"] == rates["backbone"] and recipe.warmup == 0:
        model_parameters = groups["backbone"] + groups["head"]
        if model_parameters:
            torch_groups.append({"name": "model", "params": model_parameters, "lr": lr, "weight_decay": decay["head"]})
    else:
        for name in ("backbone", "head"):
            if groups[name]:
                torch_groups.append(
                    {"name": name, "params": groups[name], "lr": rates[name], "weight_decay": decay[name]}
                )
    if groups["loss"]:
        torch_groups.append(
            {"name": "loss", "params": groups["loss"], "lr": rates["loss"], "weight_decay": decay["loss"]}
        )
    if not torch_groups:
        raise ValueError("nothing to train: the model and the loss have no trainable parameters")
    for group in torch_groups:
        group["initial_lr"] = group["lr"]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(torch_groups, lr=lr, momentum=0.9)
    optimizer_class = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(torch_groups, lr=lr, eps=recipe.eps)


def lr_factor(recipe: OptimizerRecipe, step: int, steps: int) -> float:
    """The factor of every initial learning rate at ``step`` (1-based) of ``steps``: ``gamma``
    to the number of milestones passed (a milestone ``m`` is passed once ``step > m × steps``,
    as a step schedule stepped at the end of each epoch would have it)."""
    if steps < 1 or not 1 <= step <= steps:
        raise ValueError(f"step must lie in [1, {steps}], got {step}")
    passed = bisect.bisect_left([m * steps for m in recipe.milestones], step)
    return recipe.gamma**passed


def warmup_steps(recipe: OptimizerRecipe, steps: int) -> int:
    """How many of ``steps`` the backbone stays frozen."""
    return math.floor(recipe.warmup * steps)


def set_learning_rates(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Every group's learning rate to ``initial_lr × factor``."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


def apply_warmup(groups: dict[str, list[nn.Parameter]]) -> None:
    """Drop the backbone's gradients, so that the optimiser step leaves it (and its moment
    estimates and weight decay) untouched: torch optimisers skip a parameter whose ``grad`` is
    ``None``."""
    for p in groups["backbone"]:
        p.grad = None


def clip_gradients(recipe: OptimizerRecipe, parameters: list[nn.Parameter]) -> None:
    """Clip by value, then by global norm, as the recipe asks."""
    if recipe.clip_grad_value is not None:
        torch.nn.utils.clip_grad_value_(parameters, recipe.clip_grad_value)
    if recipe.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(parameters, recipe.clip_grad_norm)
