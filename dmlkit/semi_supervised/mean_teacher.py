"""Mean teacher (Tarvainen & Valpola, "Mean teachers are better role models", NeurIPS 2017).

The teacher is an exponential moving average of the student's weights,
``θ'_t = α θ'_{t−1} + (1 − α) θ_t`` (Eq. 1), and the student is trained on its supervised loss
plus a consistency cost: the squared difference between its class probabilities and the
teacher's on differently augmented copies of the same images, labelled or not (Sec. 2,
``J(θ) = E ‖f(x, θ', η') − f(x, θ, η)‖²``). The authors' settings (Appendix B.1): α = 0.99
during the ramp-up and 0.999 after, and the consistency weight ramped up as
``exp(−5 (1 − t)²)`` over the ramp-up. Their code also caps α at ``1 − 1/(step + 1)``, so that
the first steps' teacher is not an average over the random initialisation. The teacher, not
the student, is the model to keep (it is the better one in the paper's Table 1–2).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_int, check_probability

__all__ = ["MeanTeacher", "sigmoid_rampup", "softmax_mse"]


def sigmoid_rampup(step: int, length: int) -> float:
    """``exp(−5 (1 − t)²)`` with ``t = step / length`` clipped to ``[0, 1]`` (Laine & Aila's
    ramp-up, used by the mean-teacher paper); 1 for ``length = 0``."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def softmax_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """The consistency cost: mean over the batch of ``‖softmax(s) − softmax(t)‖² / c`` — the
    squared error between class probabilities, averaged over the c classes as in the authors'
    code. No gradient reaches the teacher."""
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise ValueError(
            "student and teacher logits must both be (batch, classes), got shapes "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    difference = F.softmax(student_logits, dim=1) - F.softmax(teacher_logits.detach(), dim=1)
    return difference.pow(2).mean(1).mean()


class MeanTeacher(nn.Module):
    """An EMA teacher for any student module: ``mt = MeanTeacher(student)``; after every optimiser
    step call ``mt.update()``; ``mt.teacher(x)`` runs the teacher.

    Args:
        student: the trained module (its parameters receive the gradients).
        decay: α after the ramp-up (0.999 in the paper).
        ramp_up_decay: α during the ramp-up (0.99 in the paper).
        ramp_up_steps: length of the ramp-up in optimiser steps (of α and of the consistency
            weight, :meth:`consistency_weight`).
        consistency: the largest weight of the consistency cost.
    """

    def __init__(
        self,
        student: nn.Module,
        decay: float = 0.999,
        ramp_up_decay: float = 0.99,
        ramp_up_steps: int = 0,
        consistency: float = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(student, nn.Module):
            raise TypeError(f"student must be a torch.nn.Module, got {type(student).__name__}")
        self.decay = check_probability("decay", decay)
        self.ramp_up_decay = check_probability("ramp_up_decay", ramp_up_decay)
        self.ramp_up_steps = check_int("ramp_up_steps", ramp_up_steps, minimum=0)
        if consistency < 0 or not math.isfinite(consistency):
            raise ValueError(f"consistency must be a finite number >= 0, got {consistency!r}")
        self.consistency = float(consistency)
        self.student = student
        self.teacher = copy.deepcopy(student)
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.step = 0

    def current_decay(self) -> float:
        """α of the next update: the ramp-up or final decay, capped at ``1 − 1/(step + 1)``."""
        alpha = self.ramp_up_decay if self.step < self.ramp_up_steps else self.decay
        return min(1.0 - 1.0 / (self.step + 1), alpha)

    def consistency_weight(self) -> float:
        """The consistency cost's weight at the current step: ``consistency × sigmoid_rampup``."""
        return self.consistency * sigmoid_rampup(self.step, self.ramp_up_steps)

    @torch.no_grad()
    def update(self) -> float:
        """``θ' ← α θ' + (1 − α) θ`` for every parameter and floating-point buffer (batch-norm
        statistics, averaged as timm's ``ModelEma`` does; the authors' code lets the teacher's
        own forward passes update them instead); integer buffers are copied. Returns the α used."""
        alpha = self.current_decay()
        self.step += 1
        for teacher, student in zip(self.teacher.parameters(), self.student.parameters(), strict=True):
            teacher.mul_(alpha).add_(student.detach(), alpha=1.0 - alpha)
        for teacher, student in zip(self.teacher.buffers(), self.student.buffers(), strict=True):
            if teacher.is_floating_point():
                teacher.mul_(alpha).add_(student.detach(), alpha=1.0 - alpha)
            else:
                teacher.copy_(student)
        return alpha

    def forward(self, *args, **kwargs):
        return self.student(*args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"decay={self.decay}, ramp_up_decay={self.ramp_up_decay}, ramp_up_steps={self.ramp_up_steps}, "
            f"consistency={self.consistency}"
        )
