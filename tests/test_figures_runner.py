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
    code = main(
        [
            "--notebooks",
            str(notebooks),
            "--out",
            str(out),
            "--build",
            str(tmp_path / "build"),
            "--smoke",
            "--param",
            "EXTRA=7",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "00_good" / "smoke_True_extra_7.txt").exists()
    assert "00_good" in captured.out and "ok" in captured.out and "FAILED" in captured.out
    assert "boom in a cell" in captured.err
    assert (tmp_path / "build" / "00_good.ipynb").exists()


def test_unknown_parameter_lists_the_notebooks_parameters(notebooks, tmp_path, capsys):
    code = main(
        ["--notebooks", str(notebooks), "--only", "00_good", "--out", str(tmp_path / "f"), "--param", "STEPS=3"]
    )
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


# --- atomic results: a run that cannot finish publishes nothing ---------------------------------

WRITES_THEN_RAISES = (
    "from pathlib import Path\nPath(OUT_DIR).mkdir(parents=True, exist_ok=True)\n"
    "(Path(OUT_DIR) / 'figure.png').write_bytes(b'new figure')\n"
    "raise RuntimeError('boom after a figure')"
)
WRITES_THEN_SLEEPS = (
    "import time\nfrom pathlib import Path\nPath(OUT_DIR).mkdir(parents=True, exist_ok=True)\n"
    "(Path(OUT_DIR) / 'figure.png').write_bytes(b'new figure')\n"
    "import os\n(Path(OUT_DIR).parent.parent / 'started').write_text(str(os.getpid()))  # for the test\n"
    "time.sleep(120)"
)
GOOD = (
    "import json\nfrom pathlib import Path\nPath(OUT_DIR).mkdir(parents=True, exist_ok=True)\n"
    "(Path(OUT_DIR) / 'figure.png').write_bytes(b'good figure ' + str(EXTRA).encode())\n"
    "(Path(OUT_DIR) / 'results.json').write_text(json.dumps({'notebook': '00_nb', 'settings': {'smoke': SMOKE},\n"
    "  'methods': {'toy': {'test': {'recall@1': 0.5, 'map@r': 0.25, 'r_precision': 0.3}, 'rho': 0.75,\n"
    "  'train_map@r': 0.5, 'gap_map@r': 0.25, 'train_s': 1.0, 'settings': {'steps': EXTRA, 'P': 2, 'K': 2}}}}))"
)


def tree(folder):
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def committed(tmp_path):
    """A notebook folder with one good notebook and a figures/ tree from a good run of it."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "00_nb.ipynb", GOOD)
    out = tmp_path / "figures"
    assert main(["--notebooks", str(folder), "--out", str(out), "--build", str(tmp_path / "build")]) == 0
    (out / "00_nb" / "only_in_the_old_run.txt").write_text("old")
    return folder, out


def run_figures(folder, out, tmp_path, *extra):
    return main(["--notebooks", str(folder), "--out", str(out), "--build", str(tmp_path / "build"), *extra])


def test_a_good_run_replaces_the_whole_folder_and_its_records(committed, tmp_path):
    folder, out = committed
    assert run_figures(folder, out, tmp_path, "--param", "EXTRA=5") == 0
    assert tree(out / "00_nb").keys() == {"figure.png", "results.json", "00_nb.ipynb"}  # nothing of the old run is left
    assert (out / "00_nb" / "figure.png").read_bytes() == b"good figure 5"
    assert "| 00_nb | toy | 5 |" in (out / "results.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_notebook_that_writes_a_figure_then_fails_changes_nothing(committed, tmp_path, capsys):
    folder, out = committed
    before = tree(out)
    write_notebook(folder / "00_nb.ipynb", WRITES_THEN_RAISES)
    assert run_figures(folder, out, tmp_path) == 1
    assert tree(out) == before
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "previous figures kept" in captured.out
    assert "boom after a figure" in captured.err and str(tmp_path / "build" / "00_nb.ipynb") in captured.err


def test_a_notebook_past_its_time_limit_is_stopped_and_changes_nothing(committed, tmp_path, capsys):
    folder, out = committed
    before = tree(out)
    write_notebook(folder / "00_nb.ipynb", WRITES_THEN_SLEEPS)
    assert run_figures(folder, out, tmp_path, "--timeout", "8") == 1
    assert tree(out) == before
    captured = capsys.readouterr()
    assert "TIMED OUT" in captured.out and "past the time limit of 8 s (--timeout)" in captured.err


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_run_killed_mid_notebook_changes_nothing(committed, tmp_path, signal_name):
    import signal
    import subprocess
    import sys
    import time

    folder, out = committed
    before = tree(out)
    write_notebook(folder / "00_nb.ipynb", WRITES_THEN_SLEEPS)
    command = [
        sys.executable,
        "-m",
        "dmlkit.figures",
        "--notebooks",
        str(folder),
        "--out",
        str(out),
        "--build",
        str(tmp_path / "build"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "started").exists():  # the notebook has written its figure
        assert time.time() < deadline and process.poll() is None, process.communicate()[0]
        time.sleep(0.2)
    process.send_signal(getattr(signal, signal_name))
    text = process.communicate(timeout=60)[0]
    kernel = int((tmp_path / "started").read_text())
    deadline = time.time() + 30
    while running(kernel):  # the kernel does not run on, whatever killed the command
        assert time.time() < deadline, f"kernel {kernel} still running after {signal_name}"
        time.sleep(0.5)
    if signal_name == "SIGKILL":
        # Nothing could be cleaned up: the published tree is intact, a hidden staging folder is
        # left, and the next run removes it.
        left = tree(out)
        assert {k: v for k, v in left.items() if not k.startswith(".dmlkit-staging-")} == before
        write_notebook(folder / "00_nb.ipynb", WRITES_THEN_RAISES)
        assert run_figures(folder, out, tmp_path) == 1
        assert tree(out) == before
        return
    assert process.returncode == 130, text
    assert "INTERRUPTED" in text and "unchanged" in text
    assert tree(out) == before


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()  # a zombie has stopped running
    except FileNotFoundError:
        return False


def test_bad_values_fail_before_any_kernel_starts(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(
        folder / "00_typed.ipynb",
        "raise AssertionError('must not run')",
        parameters="SMOKE = False\nSEED = 0\nDATASET = 'glyphs'\nOUT_DIR = 'x'\n"
        "STEPS: int | None = None  # steps\nMODE: Literal['a', 'b'] = 'a'\nRATE = 0.5\nSHOTS = [1, 5]",
    )
    out = tmp_path / "figures"
    cases = {
        "STEPS=abc": "STEPS='abc' (a string) is not an integer or None",
        "SEED=1.5": "SEED=1.5 (a number) is not an integer",
        "SMOKE=maybe": "SMOKE='maybe' (a string) is not a bool (True or False)",
        "DATASET=imagenet": "DATASET='imagenet' is not a data set of the kit; choices: cars196, cub200, digits",
        "MODE=c": "MODE='c' (a string) is not one of 'a', 'b'",
        "RATE=fast": "RATE='fast' (a string) is not a number",
        "SHOTS=[1,'x']": "SHOTS=[1, 'x'] (a list) is not a list of integers",
    }
    for value, message in cases.items():
        assert main(["--notebooks", str(folder), "--out", str(out), "--param", value]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_good_values_are_converted_to_the_declared_type(tmp_path):
    from dmlkit.parameters import check_overrides, notebook_parameters

    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(
        folder / "00_typed.ipynb",
        "pass",
        parameters="SMOKE = False\nSTEPS: int | None = None\nRATE = 0.5\nSIZES = (1, 2)",
    )
    params = notebook_parameters(folder / "00_typed.ipynb")
    assert params["STEPS"].type_text == "int | None" and params["SIZES"].type_text == "tuple[int, ...]"
    values, problems = check_overrides(params, {"SMOKE": "true", "STEPS": None, "RATE": 1, "SIZES": [3, 4]})
    assert problems == []
    assert values == {"SMOKE": True, "STEPS": None, "RATE": 1.0, "SIZES": (3, 4)}
    assert isinstance(values["RATE"], float)


@pytest.mark.parametrize("kind", ["file", "below a file", "read-only"])
def test_an_unusable_out_folder_is_a_one_line_error(notebooks, tmp_path, capsys, kind):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = {"file": blocker, "below a file": blocker / "sub", "read-only": "/proc/dmlkit-figures"}[kind]
    assert main(["--notebooks", str(notebooks), "--only", "00_good", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dmlkit figures: error: --out")
    assert "is a file, not a folder" in err or "cannot be written" in err


def test_the_executed_notebook_is_kept_beside_its_figures(notebooks, tmp_path):
    out = tmp_path / "figs"
    code = main(["--notebooks", str(notebooks), "--only", "00_good", "--out", str(out), "--build", str(tmp_path / "b")])
    assert code == 0
    kept = nbformat.read(str(out / "00_good" / "00_good.ipynb"), as_version=4)
    assert kept.cells[-1].execution_count is not None  # executed, outputs kept
    assert any(str(out / "00_good") in c.source for c in kept.cells)  # OUT_DIR names the real folder


def test_compact_notebook_shrinks_images_under_the_limit(tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    from dmlkit.executed_copy import compact_notebook

    rng = np.random.default_rng(0)
    pixels = (rng.random((400, 600, 3)) * 255).astype("uint8")  # noise: the hardest image to compress
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    nb.cells = [nbformat.v4.new_code_cell("plot()", outputs=cell.outputs) for _ in range(4)]
    source = tmp_path / "big.ipynb"
    nbformat.write(nb, source)
    assert source.stat().st_size > 2_000_000
    size = compact_notebook(source, tmp_path / "small.ipynb", max_bytes=600_000)
    assert size <= 600_000 and (tmp_path / "small.ipynb").stat().st_size == size
    small = nbformat.read(str(tmp_path / "small.ipynb"), as_version=4)
    image = Image.open(io.BytesIO(base64.b64decode(small.cells[0].outputs[0]["data"]["image/png"])))
    assert image.mode == "P" and image.width < 600  # palette PNG, scaled down to fit
    with pytest.raises(ValueError, match="limit is 0.0 MB"):
        compact_notebook(source, tmp_path / "none.ipynb", max_bytes=10)


def test_progress_text_is_kept_as_a_terminal_shows_it(tmp_path):
    from dmlkit.executed_copy import compact_notebook, terminal_text

    assert terminal_text("x:  10%\rx:  50%\rx: 100%\ndone\n") == "x: 100%\ndone\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "run()", outputs=[nbformat.v4.new_output("stream", name="stdout", text="a\r" * 1000 + "b\n")]
        )
    ]
    nbformat.write(nb, tmp_path / "in.ipynb")
    compact_notebook(tmp_path / "in.ipynb", tmp_path / "out.ipynb")
    assert nbformat.read(str(tmp_path / "out.ipynb"), as_version=4).cells[0].outputs[0]["text"] == "b\n"


def test_a_notebook_marked_runs_last_comes_after_the_others(tmp_path):
    import nbformat

    for stem, last in (("00_a", False), ("01_synthesis", True), ("02_b", False)):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        if last:
            nb.metadata["dmlkit"] = {"runs_last": True}
        nbformat.write(nb, str(tmp_path / f"{stem}.ipynb"))
    assert [p.stem for p in find_notebooks(tmp_path)] == ["00_a", "02_b", "01_synthesis"]
    assert [p.stem for p in find_notebooks(tmp_path, ["01_synthesis", "02_b"])] == ["02_b", "01_synthesis"]


def test_the_synthesis_notebook_runs_after_every_family_notebook():
    from pathlib import Path

    stems = [p.stem for p in find_notebooks(Path(__file__).resolve().parents[1] / "notebooks")]
    assert stems[-1] == "07_compression_generalisation"
