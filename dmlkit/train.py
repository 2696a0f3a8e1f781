"""One training loop for every notebook: :func:`fit`, plus checkpoints.

``fit`` draws class-balanced P×K batches, embeds them, applies the loss and steps an optimiser
whose loss parameters (proxies, classifier weights) may have their own learning rate. It is
seeded and device-agnostic (CUDA when available), shows a progress bar, records the loss and
optional periodic evaluations, and stops with a clear message when the loss stops being finite.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from dmlkit.data.augment import random_affine
from dmlkit.data.samplers import PKSampler
from dmlkit.distributed.gather import GatheredLoss, average_gradients
from dmlkit.distributed.process_group import Context, agree
from dmlkit.distributed.process_group import current as current_context
from dmlkit.distributed.sampler import DistributedPKSampler
from dmlkit.files import atomic_output
from dmlkit.optim import (
    OptimizerRecipe,
    apply_warmup,
    build_optimizer,
    clip_gradients,
    lr_factor,
    parameter_groups,
    set_learning_rates,
    warmup_steps,
)
from dmlkit.utils import default_device, seed_everything

__all__ = ["History", "fit", "save_checkpoint", "load_checkpoint", "progress_bar"]


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes:
        steps: step number of every recorded loss value.
        losses: the loss at those steps.
        evaluations: one dict per periodic evaluation, ``{"step": ..., <metric>: ...}``.
        train_seconds: time spent in training steps (evaluations excluded).
        images_seen: images that went through the model in training.
        settings: the arguments of the run, for the results files.
        interrupted_at: the step at which the kernel was interrupted (``None``: ran to the end).
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    images_seen: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    interrupted_at: int | None = None

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def seconds_per_step(self) -> float:
        return self.train_seconds / self.steps[-1] if self.steps else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """Plain Python types only (JSON- and ``weights_only``-safe)."""
        return asdict(self)


def progress_bar(total: int, description: str, enabled: bool = True) -> Any:
    """A tqdm bar: the notebook widget in a live JupyterLab session (:func:`dmlkit.live.is_live`);
    none in a headless kernel (a widget bar would stay frozen at 0 % in the executed notebook,
    and text bars would fill it with thousands of lines); text in a terminal."""
    from tqdm import tqdm as text_tqdm

    from dmlkit.live import is_live

    if not enabled:
        return text_tqdm(total=total, disable=True)
    if is_live():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(total=total, desc=description)
    if "ipykernel" in sys.modules:  # a headless kernel (dmlkit figures, tests): its text would bloat the notebook
        return text_tqdm(total=total, disable=True)
    return text_tqdm(total=total, desc=description, file=sys.stdout, mininterval=2.0)


def _loader_workers() -> int:
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def _batches(dataset: Dataset, sampler: Any, device: torch.device):
    """Yield ``(images, labels)`` batches on ``device`` (fast path for in-memory datasets)."""
    if hasattr(dataset, "get_batch"):
        for indices in sampler:
            images, labels = dataset.get_batch(indices)
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        return
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=_loader_workers(),
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    for images, labels in loader:
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def _repeat(sampler: Any, steps: int) -> list[list[int]]:
    """The first ``steps`` batches of ``sampler``, iterating it again whenever it runs out."""
    batches: list[list[int]] = []
    while len(batches) < steps:
        before = len(batches)
        for batch in sampler:
            batches.append(list(batch))
            if len(batches) == steps:
                break
        if len(batches) == before:
            raise ValueError("the sampler yielded no batch")
    return batches


def fit(
    model: nn.Module,
    loss: nn.Module,
    train_data: Dataset,
    *,
    steps: int | None = None,
    epochs: float | None = None,
    P: int = 32,
    K: int = 4,
    lr: float = 1e-3,
    loss_lr: float | None = None,
    weight_decay: float | None = None,
    optimizer: str | None = None,
    recipe: OptimizerRecipe | None = None,
    augment: bool = False,
    eval_data: Dataset | None = None,
    eval_every: int | None = None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    log_every: int = 10,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    description: str | None = None,
    sampler: Any = None,
    monitor: Any = None,
    distributed: bool = False,
) -> History:
    """Train ``model`` with ``loss`` on P×K batches of ``train_data``.

    Args:
        model: maps images to embeddings.
        loss: ``loss(embeddings, labels) -> scalar``; its parameters (if any) are trained too,
            with learning rate ``loss_lr``.
        train_data: a dataset with ``.labels``.
        steps: number of optimiser steps; or give ``epochs`` (one epoch = ``len(data) // (P*K)``
            steps). Exactly one of the two, or neither for one epoch.
        P, K: classes per batch and images per class (:class:`~dmlkit.data.PKSampler`).
        lr: learning rate of the model (with a ``recipe``: of its backbone).
        loss_lr: learning rate of the loss's parameters (proxies); defaults to ``lr`` (with a
            ``recipe``: ``lr`` times its ``loss_lr_multiplier``). Proxy papers use a much larger
            one (×100 in Proxy-Anchor's trainer).
        weight_decay: decoupled weight decay (AdamW) or L2 (adam, sgd) of every parameter;
            default 1e-4. Not with a ``recipe``, which sets it per group.
        optimizer: ``"adamw"`` (default), ``"adam"`` or ``"sgd"`` (momentum 0.9). Not with a
            ``recipe``.
        recipe: a paper's :class:`~dmlkit.optim.OptimizerRecipe`: optimiser, per-group learning
            rates and weight decay, warm-up with a frozen backbone, step schedule and gradient
            clipping. Without one, ``optimizer`` and ``weight_decay`` make a recipe with one
            learning rate for the whole model.
        augment: light random rotation, zoom and shift of each image (:func:`random_affine`).
        eval_data: evaluated every ``eval_every`` steps and at the end with
            :func:`dmlkit.evaluate.retrieval_metrics` (and ρ of these embeddings); ``eval_fn``
            replaces that default with any ``model -> dict`` function.
        eval_every: evaluation period in steps (``None``: only at the end, if ``eval_data`` or
            ``eval_fn`` is given).
        log_every: record the loss every this many steps (and at the last step).
        seed: seeds torch, NumPy, Python, the sampler and the augmentation.
        device: default :func:`dmlkit.default_device` (CUDA when available).
        progress: show a progress bar.
        description: label of the progress bar.
        sampler: a batch sampler (an iterable of index lists, e.g.
            :class:`~dmlkit.data.samplers.CategoryPKSampler`) used instead of the default
            ``PKSampler(labels, P, K)``; it is iterated again when exhausted until ``steps``.
        monitor: a :class:`dmlkit.live.TrainingMonitor` (or any object with ``update(history)``
            and ``close(history)``): called after every evaluation and at the end; live in
            JupyterLab it redraws the loss and held-out metrics in place.
        distributed: train as one process of the initialised ``torch.distributed`` group
            (:mod:`dmlkit.distributed`; call ``fit`` on every process with the same arguments):
            DistributedDataParallel over the model, each process's whole classes of one global
            ``P × K`` batch (:class:`~dmlkit.distributed.DistributedPKSampler`; ``P`` a multiple
            of the world size), and the loss on the gathered global batch
            (:class:`~dmlkit.distributed.GatheredLoss`) — the same loss, gradients and, for a
            model without batch statistics and without ``augment``, the same parameters as one
            process with the global batch. ``device`` is the process's own (default: ``cuda:r``
            with nccl, the CPU with gloo); evaluations run on every process; the progress bar
            and the monitor on rank 0 only. In a single process it changes nothing.

    Interrupting the kernel (Ctrl-C, JupyterLab's stop button) ends the run early instead of
    losing it: the model is evaluated as it is, ``History.interrupted_at`` records the step, and
    the history is returned (interrupt again to stop the cell).

    Returns:
        The :class:`History` of the run. The model is left on ``device`` in eval mode.

    Raises:
        FloatingPointError: when the loss becomes NaN or infinite, naming the step.
    """
    if steps is not None and epochs is not None:
        raise ValueError("give either steps or epochs, not both")
    labels = getattr(train_data, "labels", None)
    if labels is None:
        raise ValueError("train_data must have a .labels attribute (see dmlkit.data.load)")
    if lr <= 0 or (loss_lr is not None and loss_lr <= 0):
        raise ValueError(f"learning rates must be positive, got lr={lr}, loss_lr={loss_lr}")
    if recipe is None:
        recipe = OptimizerRecipe(
            optimizer="adamw" if optimizer is None else optimizer,
            weight_decay=1e-4 if weight_decay is None else weight_decay,
        )
    elif optimizer is not None or weight_decay is not None:
        raise ValueError(
            "give either a recipe or optimizer/weight_decay, not both: the recipe sets the optimiser and "
            f"the weight decay of each group (got optimizer={optimizer!r}, weight_decay={weight_decay!r})"
        )
    if log_every < 1:
        raise ValueError(f"log_every must be at least 1, got {log_every}")
    epoch_steps = max(1, len(labels) // (P * K))
    if steps is None:
        steps = max(1, round((1.0 if epochs is None else epochs) * epoch_steps))
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if eval_every is not None and eval_every < 1:
        raise ValueError(f"eval_every must be at least 1, got {eval_every}")

    generator = seed_everything(seed)
    context = _distributed_context(distributed, device, sampler, seed)
    if context is not None:
        device = context.device
        generator.manual_seed(seed + context.rank)  # each process augments its images differently
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    loss.to(device)
    if context is not None:
        batches = DistributedPKSampler(labels, P, K, context.rank, context.world_size, num_batches=steps, seed=seed)
        forward_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        forward_loss = GatheredLoss(loss)
        progress = progress and context.is_main
        monitor = monitor if context.is_main else None
    else:
        batches = PKSampler(labels, P, K, num_batches=steps, seed=seed) if sampler is None else _repeat(sampler, steps)
        forward_model, forward_loss = model, loss

    groups = parameter_groups(model, loss)
    optim = build_optimizer(recipe, groups, lr, loss_lr)
    trained = [p for group in optim.param_groups for p in group["params"]]
    frozen_steps = warmup_steps(recipe, steps)
    scheduled = bool(recipe.milestones)

    if eval_fn is None and eval_data is not None:
        eval_fn = _default_evaluation(eval_data)
    history = History(
        settings={
            "steps": steps,
            "P": P,
            "K": K,
            "lr": lr,
            "loss_lr": loss_lr or recipe.learning_rates(lr)["loss"],
            "weight_decay": recipe.weight_decay,
            "optimizer": recipe.optimizer,
            "learning_rates": {group["name"]: group["initial_lr"] for group in optim.param_groups},
            "recipe": asdict(recipe),
            "augment": augment,
            "seed": seed,
            "device": str(device),
            "loss": type(loss).__name__,
            "sampler": type(sampler if sampler is not None else batches).__name__,
            "model": type(model).__name__,
            **({"world_size": context.world_size, "backend": context.backend} if context is not None else {}),
        }
    )
    bar = progress_bar(steps, description or type(loss).__name__, progress)
    model.train()
    loss.train()
    started = time.perf_counter()
    evaluation_seconds = 0.0
    step = 0
    try:
        for step, (images, batch_labels) in enumerate(_batches(train_data, batches, device), start=1):
            if augment:
                images = random_affine(images, generator)
            value = forward_loss(forward_model(images), batch_labels)
            if not torch.isfinite(value):
                bar.close()
                raise FloatingPointError(
                    f"the loss became {value.item()} at step {step} of {steps} "
                    f"({type(loss).__name__}, lr={lr}); lower the learning rate or check the inputs"
                )
            optim.zero_grad(set_to_none=True)
            value.backward()
            if context is not None:
                average_gradients(groups["loss"])  # DDP averages the model's; the proxies' copies stay equal
            if step <= frozen_steps:
                apply_warmup(groups)
            clip_gradients(recipe, trained)
            if scheduled:
                set_learning_rates(optim, lr_factor(recipe, step, steps))
            optim.step()
            history.images_seen += images.shape[0] * (context.world_size if context is not None else 1)
            if step % log_every == 0 or step == steps:
                history.steps.append(step)
                history.losses.append(float(value.detach()))
                bar.set_postfix(loss=f"{history.losses[-1]:.4f}", refresh=False)
            bar.update(1)
            if eval_fn is not None and ((eval_every and step % eval_every == 0) or step == steps):
                tick = time.perf_counter()
                record = {"step": step, **eval_fn(model)}
                history.evaluations.append(record)
                evaluation_seconds += time.perf_counter() - tick
                if monitor is not None:
                    monitor.update(history)
                model.train()
                loss.train()
    except KeyboardInterrupt:
        # Stopped from the notebook: keep what was trained, evaluate it as it is.
        history.interrupted_at = step
        bar.close()
        print(
            f"interrupted at step {step} of {steps}: keeping the model as trained so far "
            "(interrupt again to stop the cell)",
            flush=True,
        )
        if history.steps and history.steps[-1] != step and "value" in locals():
            history.steps.append(step)
            history.losses.append(float(value.detach()))
        if eval_fn is not None and step > 0 and (not history.evaluations or history.evaluations[-1]["step"] != step):
            tick = time.perf_counter()
            history.evaluations.append({"step": step, **eval_fn(model)})
            evaluation_seconds += time.perf_counter() - tick
    bar.close()
    history.train_seconds = time.perf_counter() - started - evaluation_seconds
    if monitor is not None:
        monitor.close(history)
    model.eval()
    loss.eval()
    return history


def _distributed_context(distributed: bool, device: Any, sampler: Any, seed: int) -> Context | None:
    """The process group's context for ``fit(distributed=True)``, checked; ``None`` otherwise or in
    a single process."""
    if not distributed:
        return None
    context = current_context()
    if not context.distributed:
        return None
    if sampler is not None:
        raise ValueError("distributed=True draws its own DistributedPKSampler: give P and K, not a sampler")
    if device is not None and torch.device(device) != context.device:
        raise ValueError(f"process {context.rank} trains on {context.device}, not on the device given ({device})")
    agree("seed", seed)  # every process must draw the same global batches
    return context


def _default_evaluation(eval_data: Dataset) -> Callable[[nn.Module], dict[str, float]]:
    def evaluate_model(model: nn.Module) -> dict[str, float]:
        from dmlkit.analysis import spectral_decay
        from dmlkit.evaluate import embed, retrieval_metrics

        embeddings, labels = embed(model, eval_data)
        metrics = retrieval_metrics(embeddings, labels)
        metrics["rho"] = spectral_decay(embeddings)
        return {k: float(v) for k, v in metrics.items()}

    return evaluate_model


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    loss: nn.Module | None = None,
    history: History | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save model and loss state (tensors and plain Python values only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "loss": loss.state_dict() if loss is not None else {},
        "history": history.as_dict() if history is not None else {},
        "extra": extra or {},
    }
    with atomic_output(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    loss: nn.Module | None = None,
    map_location: torch.device | str | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``loss``).

    Uses ``torch.load(..., weights_only=True)``: no arbitrary object is ever unpickled. Returns the
    stored ``history`` and ``extra`` dicts.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "model" not in payload:
        raise ValueError(f"{path} is not a dmlkit checkpoint (no 'model' entry)")
    model.load_state_dict(payload["model"])
    if loss is not None:
        if not payload.get("loss") and any(True for _ in loss.state_dict()):
            raise ValueError(f"{path} holds no loss state but the loss has parameters")
        loss.load_state_dict(payload.get("loss", {}))
    return {"history": payload.get("history", {}), "extra": payload.get("extra", {})}
