"""Choose notebook 08's semi-supervised budget on validation classes, never on the held-out ones.

    python bench/semi_supervised_budget.py [--steps 200 400 800 1200] [--fractions 0.01 0.1 1]
                                           [--methods supervised] [--batch 64] [--seed 0]
                                           [--classifier-lr 0.01] [--labelled-batch 16 | --unlabelled-batch 64]
                                           [--ema-decay 0.99]

The glyph training split is cut into training and validation classes
(:func:`dmlkit.data.split_validation_classes`, 20 % of the classes); each method is trained on
the training part with each share of the labels for each number of steps, and evaluated on the
validation classes. A budget is long enough when supervised-only training improves with more
labels and its validation MAP@R has levelled off (:func:`dmlkit.convergence.find_plateau`).
Prints one line per run (validation MAP@R and Recall@1, ρ, seconds) and each curve's plateau.
"""

from __future__ import annotations

import argparse
import time

import torch

from dmlkit.convergence import find_plateau
from dmlkit.data import split_validation_classes
from dmlkit.data.views import ViewAugmentation
from dmlkit.data_fit import fit_to_data
from dmlkit.experiment import load_data, protocol
from dmlkit.semi_supervised import run_semi_supervised


def _propagations(result) -> str:
    """The pseudo-label accuracy of each label propagation of a run, if it ran any."""
    found = result.history.settings.get("propagations", [])
    if not found:
        return ""
    return "; pseudo-labels correct: " + ", ".join(f"{100 * p['pseudo_label_accuracy']:.0f}%" for p in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[200, 400, 800, 1200])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--methods", nargs="+", default=["supervised"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-lr", type=float, default=None, help="default: the backbone's")
    parser.add_argument("--labelled-batch", type=int, default=None, help="default: a quarter of the batch")
    parser.add_argument(
        "--unlabelled-batch", type=int, default=0, help="unlabelled images on top of a whole labelled batch"
    )
    parser.add_argument("--ema-decay", type=float, default=0.99, help="the mean teacher's α after its ramp-up")
    args = parser.parse_args()
    train, _ = load_data("glyphs")
    split = split_validation_classes(train, 0.2, seed=args.seed)
    requested = protocol(False).with_(P=args.batch // 4, K=4, loss_lr=args.classifier_lr)
    budget, validation = fit_to_data(requested, split.train, split.validation)
    views = ViewAugmentation()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(split.train)} training images of "
        f"{split.train.num_classes} classes, {len(validation)} validation images of {validation.num_classes} classes"
    )
    for method in args.methods:
        for fraction in args.fractions:
            if method == "label_propagation" and fraction >= 1.0:
                continue
            curve = []
            for steps in sorted(args.steps):
                tick = time.perf_counter()
                result = run_semi_supervised(
                    method,
                    method,
                    split.train,
                    validation,
                    budget.with_(steps=steps),
                    fraction,
                    seed=args.seed,
                    views=views,
                    progress=False,
                    round_steps=max(1, steps // 4),
                    ema_decay=args.ema_decay,
                    **(
                        {"unlabelled_batch": args.unlabelled_batch}
                        if args.unlabelled_batch
                        else {"labelled_batch": args.labelled_batch or budget.P * budget.K // 4}
                    ),
                )
                curve.append(result.test_metrics["map@r"])
                print(
                    f"{method:18} {100 * fraction:5g}% labels {steps:5d} steps: validation MAP@R "
                    f"{100 * result.test_metrics['map@r']:5.1f}, R@1 {100 * result.test_metrics['recall@1']:5.1f}, "
                    f"ρ {result.rho:.3f}, {time.perf_counter() - tick:5.1f} s" + _propagations(result),
                    flush=True,
                )
            if len(curve) >= 3:
                plateau = find_plateau(sorted(args.steps), curve)
                print(f"  plateau: {plateau.describe()}", flush=True)


if __name__ == "__main__":
    main()
