"""Forward + backward time of every dmlkit loss against pytorch-metric-learning, one table.

    python bench/losses.py                      # all families (PML's slow lifted structure left out)
    python bench/losses.py --family proxy_based --repeats 30
    python bench/losses.py --with-slow          # include PML's lifted structure (minutes)

Gathers the ``cases()`` of ``bench/losses_<family>.py`` (batch 256, 128-d float32; proxy losses
over 1,000 classes) and times ours and PML's alternately (median of ``--repeats``). The ratio is
dmlkit / PML: below 1, dmlkit is faster. Each family's own script gives more options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import torch
from _cases import format_ratio_table

from dmlkit.profiling import interleaved_medians

FAMILIES = ("pair_based", "proxy_based", "ap_ranking", "snr")
SLOW_CASES = ("lifted_structure",)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=FAMILIES, help="only this family (repeatable)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--with-slow", action="store_true", help=f"include {SLOW_CASES}")
    args = parser.parse_args(argv)
    rows = []
    for family in args.family or FAMILIES:
        try:
            module = importlib.import_module(f"losses_{family}")
        except ModuleNotFoundError as exc:
            print(f"({family}: not available: {exc})", file=sys.stderr)
            continue
        for name, ours, reference in module.cases():
            if name in SLOW_CASES and not args.with_slow:
                continue
            ours_time, reference_time = interleaved_medians(ours, reference, args.repeats)
            rows.append((f"{family}: {name}", ours_time, reference_time))
            print(f"{family}: {name} done", file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}\n")
    print(format_ratio_table(rows))


if __name__ == "__main__":
    main()
