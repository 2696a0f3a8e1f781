"""Every exercise of every notebook has a worked answer, and every self-check accepts its answer.

The answers live in the notebooks' markdown, each in a collapsed ``<details>`` block after the
exercise (closed in JupyterLab and on GitHub until the student opens it). A ```python block
inside an answer that calls ``check("NN.k", …)`` is the answer's code: this test runs it as a
student would paste it into a cell and requires every ``check`` it calls to say "right". Every
registered self-check must be called by some notebook's answer, and must refuse a wrong answer
(each ``dmlkit.exercises.nbNN`` module's ``WRONG`` answers).
"""

from __future__ import annotations

import importlib
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from dmlkit import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
PYTHON = re.compile(r"```python\n(.*?)```", re.S)
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.\d+[a-z]?)["']""")


def exercise_section(path: Path) -> str:
    """The markdown from the notebook's ``## Exercises`` heading to the next ``## `` heading."""
    nb = nbformat.read(str(path), as_version=4)
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    start = text.find("## Exercises")
    assert start >= 0, f"{path.name} has no '## Exercises' section"
    end = text.find("\n## ", start + 5)
    return text[start : end if end >= 0 else len(text)]


def answers(path: Path) -> list[str]:
    return DETAILS.findall(exercise_section(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_an_answer(path):
    section = exercise_section(path)
    outside = DETAILS.sub("", section)
    numbered = re.findall(r"^(\d+)\. ", outside, re.M)
    assert numbered, f"{path.name}: no numbered exercises"
    found = answers(path)
    assert len(found) == len(numbered), (
        f"{path.name}: {len(numbered)} exercises but {len(found)} <details> answers; each exercise needs one"
    )
    for block in found:
        assert "<summary>" in block, f"{path.name}: an answer without a <summary> line"


def _answer_code(path: Path) -> list[tuple[str, str]]:
    """``(key, code)`` for every python block of an answer that calls ``check``."""
    blocks = []
    for block in answers(path):
        for code in map(textwrap.dedent, PYTHON.findall(block)):
            for key in CHECK_CALL.findall(code):
                blocks.append((key, code))
    return blocks


ANSWER_CODE = [(path, key, code) for path in NOTEBOOKS for key, code in _answer_code(path)]


@pytest.mark.parametrize(("path", "key", "code"), ANSWER_CODE, ids=[f"{p.stem}-{k}" for p, k, _ in ANSWER_CODE] or None)
def test_the_worked_answer_passes_its_self_check(path, key, code):
    results: list[tuple[str, bool]] = []

    def recording_check(k, answer, **kwargs):
        right = exercises.check(k, answer, **kwargs)
        results.append((k, right))
        return right

    namespace = {"check": recording_check, "__name__": "__answer__"}
    exec(
        compile(code.replace("from dmlkit.exercises import check\n", ""), f"<{path.stem} answer {key}>", "exec"),
        namespace,
    )
    assert results, f"the answer of {key} in {path.name} never called check"
    assert all(right for _, right in results), f"{path.name}: the worked answer fails its own check: {results}"


def test_every_self_check_is_used_by_an_answer_and_refuses_a_wrong_one():
    registered = exercises.keys()
    used = {key for _, key, _ in ANSWER_CODE}
    assert set(registered) <= used, f"self-checks no notebook answer calls: {sorted(set(registered) - used)}"
    for key in registered:
        module = importlib.import_module(f"dmlkit.exercises.nb{key[:2]}")
        wrong = getattr(module, "WRONG", {})
        assert key in wrong, f"dmlkit.exercises.nb{key[:2]}.WRONG has no wrong answer for {key}"
        assert exercises.check(key, wrong[key], quiet=True) is False, f"check {key} accepted a wrong answer"


def test_check_reports_errors_and_unknown_keys(capsys):
    @exercises.exercise("99.1")
    def _half(answer):
        return exercises.close_to(answer, 0.5, what="the AP")

    assert exercises.check("99.1", 0.5) is True
    assert exercises.check("99.1", "half") is False
    assert "should be a number" in capsys.readouterr().out
    with pytest.raises(KeyError, match="no self-check"):
        exercises.check("99.7", 1)
    with pytest.raises(KeyError, match="NN.k"):
        exercises.check("nine", 1)

    def broken(x):
        raise RuntimeError("boom")

    import torch

    same = exercises.same_function(broken, lambda x: x, [(torch.zeros(2),)])
    assert not same and "RuntimeError: boom" in same.message
    assert not exercises.same_function(lambda x: x[:1], lambda x: x, [(torch.zeros(2),)])
    assert exercises.same_function(lambda x: x + 0, lambda x: x, [(torch.ones(3),)])
