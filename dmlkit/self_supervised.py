"""Training without labels: every image is its own class, defined by its augmentations.

:func:`fit_self_supervised` is :func:`dmlkit.train.fit` for a loss that sees no class label.
Each step draws a batch of distinct training images (an epoch-wise random permutation, as
SimCLR's and Ye et al.'s loaders do, not P×K: there are no classes to balance), makes views of
them with a :class:`~dmlkit.data.views.ViewAugmentation` on the training device, and applies

- a two-view loss (:class:`~dmlkit.losses.self_supervised.NTXentLoss`,
  :class:`~dmlkit.losses.self_supervised.InstanceSpreadingLoss`) as
  ``loss.two_views(model(view1), model(view2))``, or
- the memory bank of Wu et al. (:class:`~dmlkit.losses.self_supervised.MemoryBankInstanceLoss`),
  which needs one view and the images' positions: ``loss(model(view), indices)``.

:func:`run_self_supervised` trains a fresh embedder (the kit's ConvNet on small grey images) that way under a
:class:`~dmlkit.experiment.Budget` (its ``steps``, ``lr``, ``weight_decay``, ``embedding_size``;
the batch holds ``P × K`` images, the same number of images per step as a supervised run) and
evaluates it like every other method of the kit (:func:`~dmlkit.experiment.evaluate_run`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from dmlkit.checks import check_int
from dmlkit.data.views import ViewAugmentation
from dmlkit.experiment import Budget, RunResult, evaluate_run, new_embedder
from dmlkit.losses.self_supervised import MemoryBankInstanceLoss
from dmlkit.optim import OptimizerRecipe, build_optimizer, parameter_groups
from dmlkit.train import History, progress_bar
from dmlkit.utils import default_device, seed_everything

__all__ = ["instance_batches", "fit_self_supervised", "run_self_supervised"]


def instance_batches(num_items: int, batch_size: int, steps: int, generator: torch.Generator) -> list[Tensor]:
    """``steps`` batches of ``batch_size`` distinct indices in ``[0, num_items)``: consecutive
    slices of random permutations (a new one each epoch; the incomplete end of each is dropped)."""
    check_int("num_items", num_items, minimum=2)
    check_int("batch_size", batch_size, minimum=2)
    check_int("steps", steps, minimum=1)
    if batch_size > num_items:
        raise ValueError(f"a batch of {batch_size} distinct images needs at least that many images, got {num_items}")
    batches: list[Tensor] = []
    while len(batches) < steps:
        order = torch.randperm(num_items, generator=generator)
        for start in range(0, num_items - batch_size + 1, batch_size):
            batches.append(order[start : start + batch_size])
            if len(batches) == steps:
                break
    return batches


def _views_needed(loss: nn.Module) -> int:
    if isinstance(loss, MemoryBankInstanceLoss):
        return 1
    if not callable(getattr(loss, "two_views", None)):
        raise TypeError(
            f"{type(loss).__name__} is not a self-supervised loss: it needs a two_views(first, second) method "
            "(NTXentLoss, InstanceSpreadingLoss) or must be a MemoryBankInstanceLoss"
        )
    return 2


def fit_self_supervised(
    model: nn.Module,
    loss: nn.Module,
    train_data: Any,
    *,
    steps: int,
    batch_size: int = 128,
    views: ViewAugmentation | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    description: str | None = None,
    log_every: int = 10,
) -> History:
    """Train ``model`` with a self-supervised ``loss`` on unlabelled batches of ``train_data``.

    Args:
        model: maps images to embeddings.
        loss: see the module docstring; its parameters, if any, are trained too.
        train_data: a dataset with ``get_batch(indices)`` (labels are never read).
        steps: optimiser steps (AdamW).
        batch_size: distinct images per step; a two-view loss embeds twice as many views.
        views: the augmentation (default :class:`ViewAugmentation`'s settings).
        lr, weight_decay: of AdamW.
        seed: seeds the model's initialisation (if created after), the batches and the views.
        device: default :func:`dmlkit.default_device`.
        progress, description, log_every: as in :func:`dmlkit.train.fit`.

    Returns:
        The :class:`~dmlkit.train.History`; the model is left in eval mode on ``device``.
        Interrupting the kernel keeps the model trained so far (``History.interrupted_at``).
    """
    if not hasattr(train_data, "get_batch"):
        raise TypeError("train_data must hold its images in memory (a dataset with get_batch), see dmlkit.data.load")
    num_views = _views_needed(loss)
    views = views or ViewAugmentation()
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    log_every = check_int("log_every", log_every, minimum=1)
    generator = seed_everything(seed)
    device = torch.device(device) if device is not None else default_device()
    batches = instance_batches(len(train_data), batch_size, steps, generator)
    if isinstance(loss, MemoryBankInstanceLoss) and loss.num_items != len(train_data):
        raise ValueError(
            f"the memory bank has {loss.num_items} entries but the training set has {len(train_data)} images"
        )
    model.to(device)
    loss.to(device)
    recipe = OptimizerRecipe(optimizer="adamw", weight_decay=weight_decay)
    optim = build_optimizer(recipe, parameter_groups(model, loss), lr)
    history = History(
        settings={
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "optimizer": "adamw",
            "views": views.as_dict(),
            "seed": seed,
            "device": str(device),
            "loss": type(loss).__name__,
            "model": type(model).__name__,
            "labels": "none",
        }
    )
    bar = progress_bar(steps, description or type(loss).__name__, progress)
    model.train()
    loss.train()
    started = time.perf_counter()
    step = 0
    try:
        for step, indices in enumerate(batches, start=1):
            images, _ = train_data.get_batch(indices)
            images = images.to(device, non_blocking=True)
            if num_views == 1:
                value = loss(model(views(images, generator)), indices.to(device))
            else:
                both = model(torch.cat([views(images, generator), views(images, generator)]))
                value = loss.two_views(*both.chunk(2))
            if not torch.isfinite(value):
                bar.close()
                raise FloatingPointError(
                    f"the loss became {value.item()} at step {step} of {steps} ({type(loss).__name__}, lr={lr}); "
                    "lower the learning rate or raise the temperature"
                )
            optim.zero_grad(set_to_none=True)
            value.backward()
            optim.step()
            history.images_seen += images.shape[0] * num_views
            if step % log_every == 0 or step == steps:
                history.steps.append(step)
                history.losses.append(float(value.detach()))
                bar.set_postfix(loss=f"{history.losses[-1]:.4f}", refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        history.interrupted_at = step
        print(f"interrupted at step {step} of {steps}: keeping the model as trained so far", flush=True)
    bar.close()
    history.train_seconds = time.perf_counter() - started
    model.eval()
    loss.eval()
    return history


def run_self_supervised(
    name: str,
    loss: nn.Module,
    train_data: Any,
    test_data: Any,
    budget: Budget,
    seed: int = 0,
    views: ViewAugmentation | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    model_fn: Callable[[int], nn.Module] | None = None,
) -> RunResult:
    """Train a fresh embedder with ``loss`` and no labels under ``budget``; evaluate it on the
    training classes and the held-out classes (:func:`dmlkit.experiment.evaluate_run`).

    The model — ``model_fn(embedding_size)``, by default :func:`dmlkit.models.default_model`
    (the ConvNet for small grey images) — is created after seeding, so it starts from the same
    weights as :func:`dmlkit.experiment.run_method`'s for the same seed and budget.
    """
    model = new_embedder(train_data, budget, seed, model_fn)
    history = fit_self_supervised(
        model,
        loss,
        train_data,
        steps=budget.steps,
        batch_size=budget.P * budget.K,
        views=views,
        lr=budget.lr,
        weight_decay=budget.weight_decay,
        seed=seed,
        device=device,
        progress=progress,
        description=name,
    )
    return evaluate_run(
        name,
        model,
        loss,
        history,
        train_data,
        test_data,
        budget,
        seed,
        settings={"labels": "none", "views": (views or ViewAugmentation()).as_dict()},
    )
