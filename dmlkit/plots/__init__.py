"""Figures shared by the notebooks: UMAP maps, retrieval examples, curves, spectra, ρ vs MAP@R.

One module per kind of figure: :mod:`~dmlkit.plots.figure` (save, show, colours, the panel
grid), :mod:`~dmlkit.plots.embedding_maps`, :mod:`~dmlkit.plots.images`,
:mod:`~dmlkit.plots.curves`, :mod:`~dmlkit.plots.planes`, :mod:`~dmlkit.plots.comparisons` and
:mod:`~dmlkit.plots.hypersphere`;
``from dmlkit import plots`` gives them all.

Every function builds a ``matplotlib.figure.Figure`` (not a pyplot-managed one, so nothing is
shown or kept open as a side effect), optionally saves it with ``save=path`` and returns it.

In a notebook every figure goes through one line, :func:`show`::

    plots.show(plots.plot_training_curves(histories), OUT_DIR / "training_curves.png")

which writes the file and shows that very file inline, once, in JupyterLab, VS Code and a
papermill-executed notebook alike. (A bare ``Figure`` as a cell's last value is shown as an image
only after ``%matplotlib inline``; without it, IPython prints ``<Figure size ...>``.)
"""

from dmlkit.plots import comparisons, curves, embedding_maps, figure, hover, hypersphere, images, planes
from dmlkit.plots.comparisons import plot_grouped_scatter, plot_leaderboard
from dmlkit.plots.curves import (
    plot_metric_trajectories,
    plot_rho_vs_metric,
    plot_scaling,
    plot_spectrum,
    plot_sweep,
    plot_training_curves,
    plot_weight_curves,
)
from dmlkit.plots.embedding_maps import (
    plot_episode_maps,
    plot_poincare_disk,
    plot_umap,
    umap_2d,
    umap_grid,
    umap_with_proxies,
)
from dmlkit.plots.figure import class_colors, panel_grid, save_figure, show
from dmlkit.plots.hover import hover_map, show_hover_map
from dmlkit.plots.hypersphere import plot_circle_views
from dmlkit.plots.images import image_grid, plot_retrieval
from dmlkit.plots.planes import (
    plot_contour_panels,
    plot_decision_regions,
    plot_pair_selection,
    plot_proxy_forces,
    plot_similarity_plane,
)

__all__ = [
    *figure.__all__,
    *embedding_maps.__all__,
    *images.__all__,
    *curves.__all__,
    *planes.__all__,
    *comparisons.__all__,
    *hover.__all__,
    *hypersphere.__all__,
]
