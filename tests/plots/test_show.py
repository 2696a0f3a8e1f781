"""plots.show: one call saves a figure and shows that same file inline, once."""

import base64

import nbformat
import pytest
from matplotlib.figure import Figure

from dmlkit import plots


def small_figure() -> Figure:
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_show_outside_a_kernel_saves_and_returns_nothing(tmp_path):
    path = tmp_path / "sub" / "line.png"
    assert plots.show(small_figure(), path) is None
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "fig, path, error, message",
    [
        ("not a figure", "x.png", TypeError, "expects a matplotlib Figure, got str"),
        (None, "x.png", TypeError, "got NoneType"),
        (small_figure(), "x.pdf", ValueError, "ends in .png|ending in .png"),
    ],
)
def test_show_rejects_bad_arguments(tmp_path, fig, path, error, message):
    with pytest.raises(error, match=message):
        plots.show(fig, tmp_path / path)


def test_show_into_a_file_not_a_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        plots.show(small_figure(), blocker / "x.png")


def test_show_in_a_kernel_publishes_the_saved_bytes_once(tmp_path):
    """Executed by papermill in a real kernel: one image/png output per figure, the file's bytes,
    and no second copy from the cell's value."""
    import papermill

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from matplotlib.figure import Figure\n"
            "from dmlkit import plots\n"
            "fig = Figure(figsize=(2, 1.5))\n"
            "fig.add_subplot().plot([0, 1], [1, 0])\n"
            f"plots.show(fig, {str(tmp_path / 'a.png')!r})"
        ),
        nbformat.v4.new_code_cell("fig.axes[0].set_title('again')\nplots.show(fig)"),
    ]
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    papermill.execute_notebook(str(source), str(executed), kernel_name="python3", progress_bar=False)
    cells = nbformat.read(executed, as_version=4).cells
    first, second = ([o for o in c.outputs if "image/png" in o.get("data", {})] for c in cells)
    assert len(first) == 1 and len(second) == 1
    assert [o for c in cells for o in c.outputs if o.output_type == "execute_result"] == []
    assert base64.b64decode(first[0].data["image/png"]) == (tmp_path / "a.png").read_bytes()
    assert first[0].metadata["image/png"]["dmlkit_figure"] == "a.png"
    assert first[0].data["text/plain"] == "[figure: a.png]"
