"""Benchmark: dmlkit's ``retrieval_metrics`` against PML's ``AccuracyCalculator``.

Both compute Recall@1 (PML's ``precision_at_1``), MAP@R and R-Precision, leave-one-out, on the
same synthetic embeddings (``N x 128``, 100 classes of equal size, Gaussian clusters). PML runs as
this project can run it, without faiss::

    AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
                       k="max_bin_count", knn_func=CustomKNN(CosineSimilarity()))

once as is ("PML", which builds the full ``N x N`` similarity matrix) and once with
``CustomKNN(CosineSimilarity(), batch_size=B)`` ("PML batched", ``B`` query rows per block, chosen
so a block takes the same ~256 MB as dmlkit's default chunk).

Every implementation runs in its own subprocess (this script re-invoked with ``--worker``), so
peak memories are not mixed: the peak resident set size (``ru_maxrss``), the part of it added by
the metric call (peak minus the RSS just before the first call) and ``tracemalloc``'s peak
(Python/NumPy allocations only — torch's allocator is invisible to it). Workers of the different
implementations alternate over ``--rounds`` rounds and the median is reported, because the
machine's cores may be shared; the CPU time (user + system, all threads) is reported beside the
wall time as it is less disturbed by other processes. The script also checks that all implementations agree on the
metric values.

    python bench/evaluate.py            # 20,000 and 60,000 embeddings
    python bench/evaluate.py --small    # 20,000 only
    python bench/evaluate.py --large    # 60,000 only

The full-matrix PML run is skipped where the ``N x N`` float32 matrix would not fit comfortably in
the available memory (60,000 needs 13.4 GiB for the matrix alone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

EMBEDDING_SIZE = 128
NUM_CLASSES = 100
CHUNK_BUDGET_BYTES = 256 * 2**20
IMPLEMENTATIONS = ("dmlkit", "PML", "PML batched")


def _rss_mb() -> float:
    """Current resident set size in MB (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _cpu_seconds() -> float:
    """User plus system CPU time of this process, all threads (less disturbed by other load)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KB on Linux


def _available_memory_mb() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return float("inf")


def _data(num_items: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_items) % NUM_CLASSES
    centres = torch.randn(NUM_CLASSES, EMBEDDING_SIZE, generator=generator)
    embeddings = centres[labels] + 1.5 * torch.randn(num_items, EMBEDDING_SIZE, generator=generator)
    return embeddings, labels


def _metric_fn(implementation: str, embeddings, labels, device: str):
    import torch

    if implementation == "dmlkit":
        from dmlkit.evaluate import retrieval_metrics

        def run() -> dict[str, float]:
            result = retrieval_metrics(embeddings, labels, ks=(1,))
            return {"recall@1": result["recall@1"], "map@r": result["map@r"], "r_precision": result["r_precision"]}

        return run

    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    if implementation == "PML":
        knn = CustomKNN(CosineSimilarity())
    else:
        batch_size = max(64, CHUNK_BUDGET_BYTES // (4 * len(labels)))
        knn = CustomKNN(CosineSimilarity(), batch_size=batch_size)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
        k="max_bin_count",
        knn_func=knn,
        device=torch.device(device),
    )

    def run() -> dict[str, float]:
        result = calculator.get_accuracy(embeddings, labels, embeddings, labels, ref_includes_query=True)
        return {
            "recall@1": result["precision_at_1"],
            "map@r": result["mean_average_precision_at_r"],
            "r_precision": result["r_precision"],
        }

    return run


def worker(implementation: str, num_items: int, repeats: int, device: str) -> None:
    """Time one implementation and print a JSON line with its times, memory and metric values."""
    import torch

    embeddings, labels = _data(num_items)
    embeddings, labels = embeddings.to(device), labels.to(device)
    run = _metric_fn(implementation, embeddings, labels, device)
    baseline_rss = _rss_mb()
    times, cpu_times = [], []
    result: dict[str, float] = {}
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        result = run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(_cpu_seconds() - cpu_start)
    peak_rss = _peak_rss_mb()
    tracemalloc.start()
    run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    print(
        json.dumps(
            {
                "implementation": implementation,
                "num_items": num_items,
                "times": times,
                "cpu_times": cpu_times,
                "peak_rss_mb": peak_rss,
                "added_rss_mb": peak_rss - baseline_rss,
                "tracemalloc_peak_mb": traced_peak / 2**20,
                "gpu_peak_mb": gpu_peak,
                "metrics": result,
            }
        )
    )


def _run_worker(implementation: str, num_items: int, repeats: int, device: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        implementation,
        "--num-items",
        str(num_items),
        "--repeats",
        str(repeats),
        "--device",
        device,
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} worker failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _feasible(implementation: str, num_items: int) -> bool:
    if implementation != "PML":
        return True
    # The full matrix plus torch.topk's and PML's work arrays: keep a 2x margin.
    need_mb = 2 * 4 * num_items**2 / 2**20
    return need_mb < _available_memory_mb()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="only 20,000 embeddings")
    size.add_argument("--large", action="store_true", help="only 60,000 embeddings")
    parser.add_argument("--rounds", type=int, default=3, help="alternating worker rounds (median)")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per worker (median)")
    parser.add_argument("--device", default="cpu", help="torch device for both (default cpu)")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--num-items", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, args.num_items, args.repeats, args.device)
        return

    sizes = [20_000] if args.small else [60_000] if args.large else [20_000, 60_000]
    import torch

    print(
        f"# retrieval_metrics vs PML AccuracyCalculator ({EMBEDDING_SIZE}-d, {NUM_CLASSES} classes, "
        f"device {args.device}, torch threads {torch.get_num_threads()}, "
        f"{args.rounds} rounds x {args.repeats} calls)\n"
    )
    lines = [
        "| N | implementation | time (s) | peak RSS (MB) | RSS added (MB) | tracemalloc peak (MB) "
        "| CPU time (s) | time dmlkit/this | CPU dmlkit/this | RSS added dmlkit/this |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for num_items in sizes:
        runnable = [name for name in IMPLEMENTATIONS if _feasible(name, num_items)]
        skipped = [name for name in IMPLEMENTATIONS if name not in runnable]
        records: dict[str, list[dict]] = {name: [] for name in runnable}
        for round_index in range(args.rounds):
            order = runnable if round_index % 2 == 0 else runnable[::-1]
            for name in order:
                record = _run_worker(name, num_items, args.repeats, args.device)
                records[name].append(record)
                print(
                    f"  N={num_items} round {round_index + 1} {name}: "
                    f"{statistics.median(record['times']):.2f} s, "
                    f"CPU {statistics.median(record['cpu_times']):.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        summary = {}
        for name, runs in records.items():
            summary[name] = {
                "time": statistics.median(t for r in runs for t in r["times"]),
                "cpu": statistics.median(t for r in runs for t in r["cpu_times"]),
                "peak": max(r["peak_rss_mb"] for r in runs),
                "added": max(r["added_rss_mb"] for r in runs),
                "traced": max(r["tracemalloc_peak_mb"] for r in runs),
                "metrics": runs[0]["metrics"],
            }
        ours = summary["dmlkit"]
        for name, row in summary.items():
            lines.append(
                f"| {num_items:,} | {name} | {row['time']:.2f} | {row['peak']:.0f} | {row['added']:.0f} "
                f"| {row['traced']:.1f} | {row['cpu']:.2f} | {ours['time'] / row['time']:.2f} "
                f"| {ours['cpu'] / row['cpu']:.2f} | {ours['added'] / max(row['added'], 1e-9):.2f} |"
            )
            difference = max(abs(row["metrics"][key] - ours["metrics"][key]) for key in ours["metrics"])
            if name != "dmlkit":
                notes.append(f"N={num_items:,}: largest metric difference dmlkit vs {name}: {difference:.2e}")
        for name in skipped:
            need_gib = 4 * num_items**2 / 2**30
            lines.append(f"| {num_items:,} | {name} | skipped | | | | | | | |")
            notes.append(
                f"N={num_items:,}: {name} skipped: its {num_items:,}^2 float32 matrix alone is "
                f"{need_gib:.1f} GiB, more than half the available memory "
                f"({_available_memory_mb() / 2**10:.1f} GiB)"
            )
        notes.append(f"N={num_items:,} metrics (dmlkit): {json.dumps(ours['metrics'])}")
    print("\n".join(lines))
    print()
    print("\n".join(f"- {note}" for note in notes))


if __name__ == "__main__":
    main()
