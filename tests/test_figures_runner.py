"""The headless runner, on tiny notebooks written here."""

import nbformat
import pytest

from dmlkit.figures import find_notebooks, main, parse_param


def write_notebook(path, body, parameters="SMOKE = False\nSEED = 0\nDATASET = 'glyphs'\nOUT_DIR = 'x'\nEXTRA = 1"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(
        folder / "00_good.ipynb",
        "from pathlib import Path\nPath(OUT_DIR).mkdir(parents=True, exist_ok=True)\n"
        "(Path(OUT_DIR) / f'smoke_{SMOKE}_extra_{EXTRA}.txt').write_text('x')",
    )
    write_notebook(folder / "01_bad.ipynb", "raise RuntimeError('boom in a cell')")
    return folder


def test_parse_param():
    assert parse_param("SEED=3") == ("SEED", 3)
    assert parse_param("DATASET=digits") == ("DATASET", "digits")
    assert parse_param("X=[1, 2]") == ("X", [1, 2])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_param("SEED")


def test_only_and_unknown_notebook(notebooks):
    assert [p.stem for p in find_notebooks(notebooks, ["01_bad"])] == ["01_bad"]
    with pytest.raises(ValueError, match="unknown notebook.*available: 00_good, 01_bad"):
        find_notebooks(notebooks, ["nope"])


def test_runs_writes_figures_and_fails_after_running_all(notebooks, tmp_path, capsys):
    out = tmp_path / "figs"
    code = main(["--notebooks", str(notebooks), "--out", str(out), "--build", str(tmp_path / "build"),
                 "--smoke", "--param", "EXTRA=7"])
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "00_good" / "smoke_True_extra_7.txt").exists()
    assert "00_good" in captured.out and "ok" in captured.out and "FAILED" in captured.out
    assert "boom in a cell" in captured.err
    assert (tmp_path / "build" / "00_good.ipynb").exists()


def test_unknown_parameter_lists_the_notebooks_parameters(notebooks, tmp_path, capsys):
    code = main(["--notebooks", str(notebooks), "--only", "00_good", "--out", str(tmp_path / "f"),
                 "--param", "STEPS=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown parameter(s) ['STEPS']" in err and "SMOKE, SEED, DATASET, OUT_DIR, EXTRA" in err
    assert not (tmp_path / "f").exists()  # nothing ran


def test_results_markdown_gathers_every_notebooks_results(notebooks, tmp_path):
    write_notebook(
        notebooks / "02_results.ipynb",
        "import json\nfrom pathlib import Path\nPath(OUT_DIR).mkdir(parents=True, exist_ok=True)\n"
        "(Path(OUT_DIR) / 'results.json').write_text(json.dumps({'notebook': '02_results', 'settings': {'smoke': SMOKE},\n"
        "  'methods': {'toy loss': {'test': {'recall@1': 0.5, 'map@r': 0.25, 'r_precision': 0.3}, 'rho': 0.75,\n"
        "  'train_map@r': 0.5, 'gap_map@r': 0.25, 'train_s': 1.0, 'settings': {'steps': 3, 'P': 2, 'K': 2}}}}))",
    )
    out = tmp_path / "figs"
    main(["--notebooks", str(notebooks), "--out", str(out), "--build", str(tmp_path / "build"), "--only", "02_results"])
    text = (out / "results.md").read_text()
    assert "| 02_results | toy loss | 3 | 2×2 | 50.0 | 25.0 | 30.0 | 0.750 | 50.0 | 25.0 | 1.0 |" in text
    assert "| 02_results | default |" in text  # the run-time table from runs.json
