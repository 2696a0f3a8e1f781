"""The install files agree, and the committed notebooks are clean."""

import json
import re
from pathlib import Path

import nbformat
import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pypi |= {_name(r) for r in extra}
    conda = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        match = re.match(r"^\s{2}- ([A-Za-z0-9_.\-]+)", line)
        if match and match.group(1) not in ("python", "pip"):
            conda.add(CONDA_TO_PYPI.get(match.group(1).lower(), match.group(1).lower()))
    assert conda == pypi, f"only in environment.yml: {conda - pypi}; only in pyproject.toml: {pypi - conda}"
    assert "-e ." in text


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "NBVAL_CHECK_OUTPUT" in source:
            for output in cell["outputs"]:
                assert "image/png" not in output.get("data", {}), f"{path.name}: image in a golden cell"
        else:
            assert cell.get("execution_count") is None, f"{path.name}: execution count left in a cell"
            assert not cell["outputs"], f"{path.name}: outputs left in cell:\n{source[:120]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_parameters_cell(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    source = "".join(tagged[0]["source"])
    for name in ("SMOKE", "SEED", "DATASET", "OUT_DIR"):
        assert re.search(rf"^{name}\s*=", source, re.M), f"{path.name}: parameters cell lacks {name}"


def test_readme_results_block_matches_the_committed_figures():
    from dmlkit.reporting.results import README_END, README_START, readme_results_block

    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    assert readme[start:end] == readme_results_block(ROOT / "figures"), (
        "README's results block is stale: run python -m dmlkit.reporting figures --readme README.md"
    )


def test_readme_lists_every_notebook_with_a_thumbnail_that_exists():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        row = next((line for line in readme.splitlines() if f"(notebooks/{path.name})" in line), None)
        assert row is not None, f"README's notebook table lacks {path.name}"
        images = re.findall(r'<img src="([^"]+)"', row)
        assert images and all((ROOT / image).exists() for image in images), f"{path.name}: thumbnail missing"


def test_every_executed_run_link_resolves():
    """The README's and each notebook's first-cell link to its executed run point at a committed file."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\[executed run\]\(([^)]+)\)", readme)
    assert len(links) == len(NOTEBOOKS), "the README should link one executed run per notebook"
    missing = [link for link in links if not (ROOT / link).exists()]
    for path in NOTEBOOKS:
        first = nbformat.read(str(path), as_version=4).cells[0].source
        own = f"../figures/{path.stem}/{path.stem}.ipynb"
        assert own in first, f"{path.name}: the first cell does not link its executed run {own}"
        if not (path.parent / own).resolve().exists():
            missing.append(own)
    assert not missing, f"executed runs not committed (run `make figures`): {missing}"
