"""The drawing functions behind the notebooks' explorers (:func:`dmlkit.live.explore`).

Each function takes the explorer's control values as keyword arguments, prints a one-line
readout (the numbers the explorer promises) and returns a matplotlib figure. Live in JupyterLab
they are redrawn on every control change; headless they are drawn once, at the defaults.

================================  ==========  =================================================
function                          notebook    what moves
================================  ==========  =================================================
:func:`draw_retrieval`            00          a query: its top-k neighbours, AP@R, R-Precision
:func:`draw_pair_losses`          01          margin, α, β, λ: loss and pair weight vs similarity
:func:`draw_proxy_softmax`        02          scale, margin, angle: softmax over proxies, force
:func:`draw_ap_path`              03          one positive's similarity: exact AP, FastAP, Smooth-AP
:func:`draw_snr`                  04          two vectors' offset and mean: d_SNR vs Euclidean
:func:`draw_poincare`             05          two points, curvature: geodesic, distances, clip
:func:`draw_episode`              06          support points and refinement steps: prototypes
:func:`draw_spectrum`             07          spectrum shape: ρ@1 and ρ@2
:func:`draw_ntxent`               08          one view's angle, τ: NT-Xent's softmax and loss
================================  ==========  =================================================
"""

from dmlkit.explorers.average_precision import draw_ap_path
from dmlkit.explorers.episode import draw_episode
from dmlkit.explorers.instance_discrimination import draw_ntxent
from dmlkit.explorers.pair_losses import draw_pair_losses
from dmlkit.explorers.poincare import draw_poincare
from dmlkit.explorers.proxies import draw_proxy_softmax
from dmlkit.explorers.retrieval import draw_retrieval, query_scores
from dmlkit.explorers.snr import draw_snr
from dmlkit.explorers.spectrum import draw_spectrum

__all__ = [
    "draw_ap_path",
    "draw_episode",
    "draw_ntxent",
    "draw_pair_losses",
    "draw_poincare",
    "draw_proxy_softmax",
    "draw_retrieval",
    "draw_snr",
    "draw_spectrum",
    "query_scores",
]
