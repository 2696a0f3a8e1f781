"""Training with a few labels: supervised only, label propagation, mean teacher.

All three train the same network — a :class:`~dmlkit.models.ConvNet` embedder and a
:class:`CosineClassifier` over the training classes, the normalised softmax of Zhai & Wu (BMVC
2019, the proxy notebook's strongest baseline) — and keep the embedder for retrieval, as the
two papers keep the network before its classifier. They differ in what the unlabelled images
contribute:

- ``"supervised"``: nothing; batches hold labelled images only.
- ``"label_propagation"`` (Iscen et al., CVPR 2019, Algorithm 1): a first part of the steps is
  supervised only, on whole batches of labelled images; then, every ``round_steps``, the
  embeddings of all training images are recomputed, the labels propagated
  (:func:`~dmlkit.semi_supervised.propagate_labels`), and the network trained on the
  pseudo-labels with each image's weight ``ω_i ζ_ŷi`` (Eq. 13).
- ``"mean_teacher"`` (Tarvainen & Valpola, NeurIPS 2017): cross-entropy on the labelled images
  plus the consistency cost between the student's and the EMA teacher's class probabilities on
  two views of every image (:class:`~dmlkit.semi_supervised.MeanTeacher`); the teacher is kept.
  It runs in eval mode, with the averaged batch-norm statistics (the authors' code runs it in
  training mode, on its batch's own statistics).

Batches mix both streams as the mean-teacher code does: ``labelled_batch`` labelled images and
the rest drawn from the unlabelled ones (for ``"supervised"`` the whole batch is labelled).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_choice, check_int, check_positive, check_probability
from dmlkit.data.views import ViewAugmentation
from dmlkit.evaluate import embed
from dmlkit.experiment import Budget, RunResult, evaluate_run, new_embedder
from dmlkit.optim import OptimizerRecipe, build_optimizer, parameter_groups
from dmlkit.semi_supervised.label_propagation import LabelPropagation, propagate_labels
from dmlkit.semi_supervised.mean_teacher import MeanTeacher, softmax_mse
from dmlkit.train import History, progress_bar
from dmlkit.utils import default_device, seed_everything

__all__ = ["METHODS", "CosineClassifier", "labelled_mask", "fit_semi_supervised", "run_semi_supervised"]

#: The semi-supervised methods of :func:`fit_semi_supervised`.
METHODS = ("supervised", "label_propagation", "mean_teacher")


class CosineClassifier(nn.Module):
    """Logits ``cos(x, w_c) / σ`` over the classes (Zhai & Wu's normalised softmax, σ = 0.05);
    its cross-entropy is :class:`dmlkit.losses.NormalizedSoftmaxLoss`."""

    def __init__(self, embedding_size: int, num_classes: int, temperature: float = 0.05) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.temperature = check_positive("temperature", temperature)
        self.weight = nn.Parameter(torch.randn(num_classes, check_int("embedding_size", embedding_size, minimum=1)))

    def forward(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T / self.temperature


class _Network(nn.Module):
    """Embedder and classifier trained together; ``forward`` gives the logits."""

    def __init__(self, embedder: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.embedder(images))


def labelled_mask(labels: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Which training images keep their label: ``round(fraction × n)`` of them, spread over the
    classes as evenly as possible (every class gets ⌊m/c⌋ or one more, the classes that get one
    more drawn at random), each class's images drawn at random. With fewer labels than classes,
    some classes have none — what 1 % of the labels means on a many-class data set."""
    labels = torch.as_tensor(labels).long().cpu()
    fraction = check_probability("fraction", fraction)
    n = labels.numel()
    wanted = round(fraction * n)
    if wanted < 1:
        raise ValueError(f"fraction={fraction} of {n} images keeps no label; use at least {1 / n:.2g}")
    generator = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    members = [(labels == c).nonzero().flatten() for c in classes]
    members = [m[torch.randperm(len(m), generator=generator)] for m in members]
    quota = torch.full((len(classes),), wanted // len(classes))
    extra = torch.randperm(len(classes), generator=generator)[: wanted % len(classes)]
    quota[extra] += 1
    mask = torch.zeros(n, dtype=torch.bool)
    # a class with fewer images than its quota gives all it has; the rest go to other classes
    short = 0
    for i, m in enumerate(members):
        take = min(int(quota[i]), len(m))
        short += int(quota[i]) - take
        mask[m[:take]] = True
    if short:
        spare = (~mask).nonzero().flatten()
        mask[spare[torch.randperm(len(spare), generator=generator)[:short]]] = True
    return mask


def _two_stream(
    labelled: Tensor, batch_size: int, labelled_batch: int, steps: int, generator: torch.Generator
) -> list[Tensor]:
    """Per step: ``labelled_batch`` labelled indices, then ``batch_size − labelled_batch`` others
    (each stream an epoch-wise random permutation, sampled with repetition when it is short)."""
    if steps == 0:
        return []
    streams = []
    for pool, size in (
        (labelled.nonzero().flatten(), labelled_batch),
        ((~labelled).nonzero().flatten(), batch_size - labelled_batch),
    ):
        if size == 0:
            streams.append(None)
            continue
        if pool.numel() == 0:
            raise ValueError("no unlabelled image to draw the unlabelled part of the batch from")
        draws: list[Tensor] = []
        needed = steps * size
        while sum(len(d) for d in draws) < needed:
            draws.append(pool[torch.randperm(len(pool), generator=generator)])
        streams.append(torch.cat(draws)[:needed].view(steps, size))
    return [torch.cat([s[step] for s in streams if s is not None]) for step in range(steps)]


def fit_semi_supervised(
    embedder: nn.Module,
    train_data: Any,
    labelled: Tensor,
    method: str = "supervised",
    *,
    steps: int,
    batch_size: int = 128,
    labelled_batch: int = 32,
    views: ViewAugmentation | None = None,
    lr: float = 1e-3,
    classifier_lr: float | None = None,
    weight_decay: float = 1e-4,
    temperature: float = 0.05,
    warmup_fraction: float = 0.3,
    round_steps: int = 50,
    knn: int = 50,
    gamma: float = 3.0,
    alpha: float = 0.99,
    consistency: float = 100.0,
    ramp_up_fraction: float = 0.4,
    ema_decay: float = 0.999,
    ramp_up_decay: float = 0.99,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    description: str | None = None,
) -> tuple[nn.Module, History]:
    """Train ``embedder`` and a cosine classifier with the labels of the ``labelled`` images only.

    Args:
        embedder: maps images to embeddings (e.g. a ConvNet).
        train_data: a dataset with ``.labels`` and ``get_batch``; only the labels where
            ``labelled`` is true are read.
        labelled: boolean mask of the images whose label may be used (:func:`labelled_mask`).
        method: one of :data:`METHODS`.
        steps, batch_size: optimiser steps (AdamW) and images per step.
        labelled_batch: labelled images per step for the two semi-supervised methods.
        views: the augmentation of every image (two independent views for the mean teacher).
        lr, weight_decay: of AdamW.
        classifier_lr: the classifier's learning rate (default ``lr``); like proxies, its class
            weights start at random and learn faster at a higher rate (notebook 02 uses 10×).
        temperature: σ of the cosine classifier.
        warmup_fraction: label propagation: the share of the steps trained on whole batches of
            labelled images before the first propagation (Iscen et al. first train on the
            labelled images).
        round_steps: label propagation: steps between two propagations (the paper's epoch).
        knn, gamma, alpha: of the graph and the diffusion (paper: 50, 3, 0.99).
        consistency, ramp_up_fraction, ema_decay, ramp_up_decay: mean teacher: the largest
            consistency weight, the ramp-up's share of the steps, and α after and during it
            (paper: 0.999 and 0.99; the authors' CIFAR-10 runs use a consistency weight of 100).
            The teacher averages over about ``1 / (1 − α)`` steps: at 0.999, a thousand steps,
            longer than a short run, whose teacher then lags far behind its student.
        seed: seeds the batches, the views and the classifier's initialisation.
        device: default :func:`dmlkit.default_device`.

    Returns:
        ``(model, history)``: the embedder to evaluate (the teacher's for the mean teacher) and
        the history, whose ``settings["propagations"]`` lists each label propagation's
        pseudo-label accuracy on the unlabelled images, its mean certainty and its CG iterations.
    """
    method = check_choice("method", method, METHODS)
    labels = getattr(train_data, "labels", None)
    if labels is None or not hasattr(train_data, "get_batch"):
        raise TypeError("train_data must be an in-memory labelled dataset (dmlkit.data.load)")
    labelled = torch.as_tensor(labelled, dtype=torch.bool).cpu()
    if labelled.shape != (len(labels),):
        raise ValueError(
            f"labelled must have one entry per training image ({len(labels)}), got {tuple(labelled.shape)}"
        )
    if not labelled.any():
        raise ValueError("no labelled image: give at least one label")
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=2)
    if method == "supervised":
        labelled_batch = batch_size
    elif labelled.all():
        if method == "label_propagation":
            raise ValueError("every image is labelled: label propagation has nothing to propagate to")
        labelled_batch = batch_size  # the mean teacher's consistency then runs on labelled images only
    elif not 1 <= labelled_batch < batch_size:
        raise ValueError(f"labelled_batch must lie in [1, batch_size), got {labelled_batch} of {batch_size}")
    check_probability("warmup_fraction", warmup_fraction)
    check_int("round_steps", round_steps, minimum=1)
    check_probability("ramp_up_fraction", ramp_up_fraction)
    views = views or ViewAugmentation()
    generator = seed_everything(seed)
    device = torch.device(device) if device is not None else default_device()
    num_classes = int(labels.max()) + 1
    classifier = CosineClassifier(
        getattr(embedder, "embedding_size", None) or _embedding_size(embedder, train_data), num_classes, temperature
    )
    network = _Network(embedder, classifier).to(device)
    teacher = None
    if method == "mean_teacher":
        teacher = MeanTeacher(
            network,
            decay=ema_decay,
            ramp_up_decay=ramp_up_decay,
            ramp_up_steps=round(ramp_up_fraction * steps),
            consistency=consistency,
        ).to(device)
    optim = build_optimizer(
        OptimizerRecipe(optimizer="adamw", weight_decay=weight_decay),
        parameter_groups(embedder, classifier),
        lr,
        loss_lr=classifier_lr,
    )
    first_propagation = max(1, round(warmup_fraction * steps)) if method == "label_propagation" else None
    # label propagation's warm-up is Iscen et al.'s first stage: whole batches of labelled images
    warm_up = first_propagation - 1 if first_propagation is not None else 0
    batches = _two_stream(labelled, batch_size, batch_size, warm_up, generator) + _two_stream(
        labelled, batch_size, labelled_batch, steps - warm_up, generator
    )
    weights = torch.ones(len(labels))
    targets = torch.where(labelled, labels.cpu(), torch.zeros_like(labels.cpu()))
    propagations: list[dict[str, float]] = []
    history = History(
        settings={
            "method": method,
            "steps": steps,
            "batch_size": batch_size,
            "labelled_batch": labelled_batch,
            "labelled": int(labelled.sum()),
            "lr": lr,
            "classifier_lr": classifier_lr if classifier_lr is not None else lr,
            "weight_decay": weight_decay,
            "temperature": temperature,
            "seed": seed,
            "device": str(device),
            "views": views.as_dict(),
            "propagations": propagations,
            **(
                {
                    "warmup_fraction": warmup_fraction,
                    "round_steps": round_steps,
                    "knn": knn,
                    "gamma": gamma,
                    "alpha": alpha,
                }
                if method == "label_propagation"
                else {}
            ),
            **(
                {
                    "consistency": consistency,
                    "ramp_up_fraction": ramp_up_fraction,
                    "ema_decay": ema_decay,
                    "ramp_up_decay": ramp_up_decay,
                }
                if method == "mean_teacher"
                else {}
            ),
        }
    )
    bar = progress_bar(steps, description or method, progress)
    network.train()
    started = time.perf_counter()
    step = 0
    try:
        for step, indices in enumerate(batches, start=1):
            if (
                first_propagation is not None
                and step >= first_propagation
                and (step - first_propagation) % round_steps == 0
            ):
                result = _propagate(embedder, train_data, labelled, num_classes, knn, gamma, alpha)
                targets, weights = result.pseudo_labels, _scaled_weights(result)
                propagations.append(
                    {
                        "step": step,
                        "pseudo_label_accuracy": result.accuracy(labels),
                        "mean_certainty": float(result.certainty[~labelled].mean()),
                        "cg_iterations": result.iterations,
                    }
                )
                network.train()
            images, _ = train_data.get_batch(indices)
            images = images.to(device, non_blocking=True)
            is_labelled = labelled[indices].to(device)
            batch_targets = torch.where(labelled[indices], labels[indices].cpu(), targets[indices]).to(device)
            if method == "mean_teacher":
                both = torch.cat([views(images, generator), views(images, generator)])
                student_logits = network(both[: len(indices)])
                with torch.no_grad():
                    # in eval mode: its batch-norm statistics are the EMA of the student's (MeanTeacher.update)
                    teacher.teacher.eval()
                    teacher_logits = teacher.teacher(both[len(indices) :])
                classification = F.cross_entropy(student_logits[is_labelled], batch_targets[is_labelled])
                value = classification + teacher.consistency_weight() * softmax_mse(student_logits, teacher_logits)
            else:
                logits = network(views(images, generator))
                per_image = F.cross_entropy(logits, batch_targets, reduction="none")
                if method == "label_propagation" and propagations:
                    value = (per_image * weights[indices].to(device)).mean()  # Eq. 13
                else:  # supervised, and label propagation before its first propagation: labels only
                    value = per_image[is_labelled].mean()
            if not torch.isfinite(value):
                bar.close()
                raise FloatingPointError(
                    f"the loss became {value.item()} at step {step} of {steps} ({method}, lr={lr})"
                )
            optim.zero_grad(set_to_none=True)
            value.backward()
            optim.step()
            if teacher is not None:
                teacher.update()
            history.images_seen += images.shape[0] * (2 if method == "mean_teacher" else 1)
            if step % 10 == 0 or step == steps:
                history.steps.append(step)
                history.losses.append(float(value.detach()))
                bar.set_postfix(loss=f"{history.losses[-1]:.4f}", refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        history.interrupted_at = step
        print(f"interrupted at step {step} of {steps}: keeping the model as trained so far", flush=True)
    bar.close()
    history.train_seconds = time.perf_counter() - started
    kept = teacher.teacher.embedder if teacher is not None else embedder
    kept.eval()
    return kept, history


def _embedding_size(embedder: nn.Module, data: Any) -> int:
    images, _ = data.get_batch([0])
    with torch.no_grad():
        was = embedder.training
        embedder.eval()
        size = embedder(images.to(next(embedder.parameters()).device)).shape[1]
        embedder.train(was)
    return int(size)


def _propagate(
    embedder: nn.Module, data: Any, labelled: Tensor, num_classes: int, knn: int, gamma: float, alpha: float
) -> LabelPropagation:
    embeddings, labels = embed(embedder, data)
    return propagate_labels(
        embeddings, labels, labelled, num_classes, k=min(knn, len(labels) - 1), gamma=gamma, alpha=alpha
    )


def _scaled_weights(result: LabelPropagation) -> Tensor:
    """Iscen et al.'s ``ω_i ζ_ŷi`` scaled so that their mean over the images that carry a label is
    1: the loss keeps the scale of an unweighted cross-entropy (ζ alone is 1/count, tiny)."""
    weights = result.weights()
    carried = weights > 0
    if carried.any():
        weights = weights / weights[carried].mean()
    return weights


def run_semi_supervised(
    name: str,
    method: str,
    train_data: Any,
    test_data: Any,
    budget: Budget,
    fraction: float,
    seed: int = 0,
    views: ViewAugmentation | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    model_fn: Callable[[int], nn.Module] | None = None,
    unlabelled_batch: int = 0,
    **options: Any,
) -> RunResult:
    """Keep ``fraction`` of the training labels (:func:`labelled_mask`, drawn with ``seed``), train
    a fresh embedder (``model_fn(embedding_size)``, default :func:`dmlkit.models.default_model`)
    with ``method`` under ``budget`` (its ``steps``, ``lr``, ``loss_lr`` for the classifier,
    ``weight_decay``, ``embedding_size``), and evaluate its embedder like every method of the kit.

    A step takes ``P × K`` images; of these ``options["labelled_batch"]`` are labelled. With
    ``unlabelled_batch > 0`` a semi-supervised step instead takes all ``P × K`` labelled images
    that supervised only takes, and ``unlabelled_batch`` unlabelled ones on top: the labelled
    stream of both is then the same, and the comparison asks what the unlabelled images add (at
    the cost of larger steps). ``options`` go to :func:`fit_semi_supervised`."""
    mask = labelled_mask(train_data.labels, fraction, seed=seed)
    batch_size = budget.P * budget.K
    check_int("unlabelled_batch", unlabelled_batch, minimum=0)
    if unlabelled_batch and method != "supervised" and not mask.all():
        if "labelled_batch" in options:
            raise ValueError("give labelled_batch or unlabelled_batch, not both")
        options["labelled_batch"] = batch_size
        batch_size += unlabelled_batch
    embedder = new_embedder(train_data, budget, seed, model_fn)
    model, history = fit_semi_supervised(
        embedder,
        train_data,
        mask,
        method,
        steps=budget.steps,
        batch_size=batch_size,
        views=views,
        lr=budget.lr,
        classifier_lr=options.pop("classifier_lr", budget.loss_lr),
        weight_decay=budget.weight_decay,
        seed=seed,
        device=device,
        progress=progress,
        description=name,
        **options,
    )
    result = evaluate_run(
        name,
        model,
        nn.Identity(),
        history,
        train_data,
        test_data,
        budget,
        seed,
        settings={
            "method": method,
            "label_fraction": fraction,
            "labelled": int(mask.sum()),
            "images_per_step": batch_size,
        },
    )
    if not math.isfinite(result.test_metrics.get("map@r", float("nan"))):
        raise FloatingPointError(f"{name}: the held-out MAP@R is not finite")
    return result
