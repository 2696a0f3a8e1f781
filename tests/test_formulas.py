"""Every formula in every notebook's markdown typesets: KaTeX (from the npm registry) renders
each ``$…$`` and ``$$…$$`` with ``throwOnError``, so a broken formula — an unbalanced brace, an
unknown command, a literal TAB where ``\\t`` of ``\\text`` was meant — fails CI instead of
showing red source to a student.

KaTeX is installed on first use into ``build/katex`` (``npm install katex``); a machine without
Node.js skips the test and says how to get it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KATEX_DIR = ROOT / "build" / "katex"
KATEX_VERSION = "0.16"

FENCED = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(
    r"(?<![\\$])\$(?!\s)((?:[^$\n]|\n(?!\s*\n))+?)(?<![\s\\])\$(?!\d)"
)  # may wrap, not across paragraphs


def formulas(markdown: str) -> list[tuple[str, bool]]:
    """``(tex, display)`` for every formula of a markdown text (code spans and blocks skipped)."""
    text = INLINE_CODE.sub("", FENCED.sub("", markdown))
    found = [(m.group(1), True) for m in DISPLAY.finditer(text)]
    found += [(m.group(1), False) for m in INLINE.finditer(DISPLAY.sub("", text))]
    return found


def katex_module() -> Path:
    module = KATEX_DIR / "node_modules" / "katex"
    if module.exists():
        return module
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs Node.js and npm to typeset the formulas with KaTeX (Debian: apt-get install nodejs npm)")
    KATEX_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(KATEX_DIR), f"katex@{KATEX_VERSION}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 or not module.exists():
        pytest.fail(f"npm install katex@{KATEX_VERSION} into {KATEX_DIR} failed:\n{result.stderr[-2000:]}")
    return module


def typeset(items: list[dict]) -> list[dict]:
    if shutil.which("node") is None:
        pytest.skip("needs Node.js to typeset the formulas with KaTeX (Debian: apt-get install nodejs npm)")
    module = katex_module()
    result = subprocess.run(
        ["node", str(ROOT / "tools" / "typeset.js"), str(module)],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_extraction_finds_inline_and_display_formulas_and_skips_code():
    text = "cost $O(B^2)$, and\n$$\\frac{a}{b}$$ but not `x = $5` nor\n```python\ny = '$a$'\n```\nor \\$3 and $4"
    assert formulas(text) == [("\\frac{a}{b}", True), ("O(B^2)", False)]
    assert formulas("a wrapped $x +\ny$ formula") == [("x +\ny", False)]
    assert formulas("$5 and\n\n$6") == []  # never across a paragraph


def test_a_broken_formula_is_caught():
    items = [
        {"where": "brace", "tex": "\\frac{a}{b", "display": True},
        {"where": "command", "tex": "\\sigmaa_k", "display": False},
        {"where": "fine", "tex": "\\sum_k \\sigma_k^2", "display": False},
    ]
    assert [f["where"] for f in typeset(items)] == ["brace", "command"]


def control_characters(tex: str) -> list[str]:
    """Control characters inside a formula: a TAB is ``\\t`` of ``\\text`` eaten by a string escape
    (KaTeX itself renders ``p_<TAB>ext{switch}`` without complaint, as the wrong formula)."""
    return [repr(ch) for ch in tex if ord(ch) < 32 and ch != "\n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_formula_of_the_notebook_typesets(path):
    nb = nbformat.read(str(path), as_version=4)
    items = [
        {"where": f"cell {i} ({cell.get('id', '?')})", "tex": tex, "display": display}
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for tex, display in formulas(cell.source)
    ]
    assert items or path.stem.startswith("07"), f"{path.name}: no formulas found (extraction broken?)"
    escaped = [f"{item['where']}: {item['tex']!r}" for item in items if control_characters(item["tex"])]
    assert not escaped, f"{path.name}: control characters (a TAB from an unescaped \\t?) in formulas: {escaped}"
    failures = typeset(items)
    assert not failures, f"{path.name}: {len(failures)} formula(s) do not typeset:\n" + "\n".join(
        f"  {f['where']}: {f['tex']!r}: {f['error']}" for f in failures
    )
