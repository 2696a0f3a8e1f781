"""Self-checks for the notebooks' exercises: ``check(key, answer)`` says right or wrong, and why.

Each notebook's checks live in a module of their own, ``dmlkit.exercises.nbNN`` (``nb04`` for
``04_snr_distance``), registered with :func:`exercise` under keys ``"NN.k"`` — notebook ``NN``,
exercise ``k`` (``"04.2"``; a letter tells sub-questions apart, ``"04.2b"``). A student calls::

    from dmlkit.exercises import check
    check("04.2", my_snr_distance)

and reads one line: ``right — …`` or ``not yet — …`` with the reason (a wrong value, a shape, an
exception inside the answer). :func:`check` returns ``True`` or ``False`` as well, so the tests
run every worked answer of the notebooks through it (``tests/test_exercises.py``).

Helpers for writing checks: :func:`close_to` (a number), :func:`same_function` (a function
compared with the kit's on seeded inputs).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Feedback", "check", "close_to", "exercise", "keys", "same_function"]


@dataclass(frozen=True)
class Feedback:
    """The outcome of one check: ``right`` and the sentence that says why."""

    right: bool
    message: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return ("right — " if self.right else "not yet — ") + self.message


_CHECKS: dict[str, Callable[[Any], Feedback]] = {}
_KEY = re.compile(r"^(\d\d)\.(\d+)([a-z]?)$")


def exercise(key: str) -> Callable[[Callable[[Any], Feedback]], Callable[[Any], Feedback]]:
    """Register ``fn(answer) -> Feedback`` as the check of exercise ``key`` (``"NN.k"``)."""
    if not _KEY.match(key):
        raise ValueError(f"an exercise key is 'NN.k' (notebook, exercise number), got {key!r}")

    def register(fn: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        if key in _CHECKS and _CHECKS[key] is not fn:
            raise ValueError(f"exercise {key!r} has two checks")
        _CHECKS[key] = fn
        return fn

    return register


def _load(notebook: str) -> None:
    try:
        importlib.import_module(f"dmlkit.exercises.nb{notebook}")
    except ModuleNotFoundError as error:
        if error.name != f"dmlkit.exercises.nb{notebook}":
            raise


def keys() -> list[str]:
    """Every registered exercise key, in order (all notebooks' modules loaded)."""
    for n in range(100):
        _load(f"{n:02d}")
    return sorted(_CHECKS, key=lambda k: (k[:2], int(_KEY.match(k).group(2)), k))


def check(key: str, answer: Any, *, quiet: bool = False) -> bool:
    """Check ``answer`` to exercise ``key``; print ``right — …`` or ``not yet — …`` (unless
    ``quiet``) and return whether it is right.

    An answer that raises is wrong, with the exception in the message; an unknown key is a
    ``KeyError`` that lists the keys of that notebook."""
    match = _KEY.match(str(key))
    if not match:
        raise KeyError(f"an exercise key is 'NN.k', e.g. '04.2', got {key!r}")
    _load(match.group(1))
    if key not in _CHECKS:
        same = [k for k in _CHECKS if k.startswith(match.group(1) + ".")]
        raise KeyError(f"no self-check for exercise {key!r}; notebook {match.group(1)} has {same or 'none'}")
    try:
        feedback = _CHECKS[key](answer)
    except Exception as error:  # the student's code failed inside the check
        feedback = Feedback(False, f"calling your answer raised {type(error).__name__}: {error}")
    if not isinstance(feedback, Feedback):
        raise TypeError(f"the check of {key!r} returned {type(feedback).__name__}, not Feedback")
    if not quiet:
        print(f"exercise {key}: {feedback}")
    return feedback.right


def close_to(answer: Any, expected: float, *, tol: float = 1e-3, what: str = "the value", why: str = "") -> Feedback:
    """Whether ``answer`` is a number within ``tol`` (absolute) of ``expected``."""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"{what} should be a number, got {type(answer).__name__} {answer!r}")
    if not math.isfinite(value):
        return Feedback(False, f"{what} is {value}, not a finite number")
    if abs(value - expected) <= tol:
        return Feedback(True, f"{what} is {expected:.4g}" + (f": {why}" if why else ""))
    return Feedback(False, f"{what} is not {value:.4g}" + (f"; hint: {why}" if why else ""))


def same_function(
    answer: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Iterable[Sequence[Any]],
    *,
    what: str = "your function",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Feedback:
    """Whether ``answer(*args)`` equals ``reference(*args)`` (tensors or numbers, to
    ``atol``/``rtol``) for every ``args`` in ``inputs``; the first mismatch is described."""
    import torch

    if not callable(answer):
        return Feedback(False, f"the answer should be a function, got {type(answer).__name__}")
    count = 0
    for count, args in enumerate(inputs, 1):
        expected = torch.as_tensor(reference(*args), dtype=torch.float64)
        try:
            got = answer(*args)
        except Exception as error:
            return Feedback(False, f"{what} raised {type(error).__name__}: {error} (input {count})")
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return Feedback(False, f"{what} returned {type(got).__name__}, not a tensor or a number (input {count})")
        if got.shape != expected.shape:
            return Feedback(
                False, f"{what} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)} (input {count})"
            )
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            worst = (got - expected).abs().max().item()
            return Feedback(False, f"{what} differs from the kit's by up to {worst:.3g} on input {count}")
    return Feedback(True, f"{what} matches the kit's on {count} seeded inputs")
