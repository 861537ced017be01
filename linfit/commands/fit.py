"""``linfit fit``: train one variant on one device and print the tutorial's history."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from linfit.backends import BACKENDS, DEFAULT_BACKEND, get_backend, variant_names
from linfit.commands._args import int_at_least, positive_float
from linfit.data import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_N_EXAMPLES,
    DEFAULT_SEED,
    DTYPES,
    check_memory,
    make_dataset,
)
from linfit.fit import FitResult, fit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit", help="train one variant on one device and print W, b and the loss per step",
        description="Train the tutorial's model f(x) = x*W + b from W=5, b=0 and print one line "
                    "per call in the tutorial's form, then the final W and b beside the "
                    "least-squares solution of the same data.")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=list(BACKENDS))
    parser.add_argument("--variant", default="eager",
                        help=f"how the step runs: {variant_names()} (default: eager)")
    parser.add_argument("--device", default="CPU:0",
                        help="device id, as 'linfit devices' lists them (default: CPU:0)")
    parser.add_argument("--n", type=int_at_least(2), default=DEFAULT_N_EXAMPLES,
                        help=f"number of examples, >= 2 (default: {DEFAULT_N_EXAMPLES})")
    parser.add_argument("--steps", type=int_at_least(1), default=10,
                        help="training steps (default: 10)")
    parser.add_argument("--steps-per-call", type=int_at_least(1), default=1,
                        help="steps per call for loop variants; the history has one line per "
                             "call (default: 1)")
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LEARNING_RATE,
                        help=f"learning rate, > 0 (default: {DEFAULT_LEARNING_RATE})")
    parser.add_argument("--seed", type=int_at_least(0), default=DEFAULT_SEED,
                        help=f"NumPy seed of the data, >= 0 (default: {DEFAULT_SEED})")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="draw W and b per step against the true values; the suffix "
                             "(.png, .svg, .pdf) picks the format, a file of that name is "
                             "replaced")
    parser.set_defaults(func=run)


def _print_history(result: FitResult) -> None:
    for record in result.history:
        print(f"Epoch {record.step:2d}: W={record.w:.2f} b={record.b:.2f}, loss={record.loss:.5f}")
    print(f"Final:    W={result.final_w:.6f} b={result.final_b:.6f}   "
          f"(OLS: W={result.w_ols:.6f} b={result.b_ols:.6f})")


def run(args: argparse.Namespace) -> int:
    # Everything that can be refused is refused before anything is allocated or trained:
    # the figure's path, the memory the data need, the backend.
    if args.plot:
        from linfit.plots import check_figure_path  # matplotlib only when a figure is asked

        check_figure_path(args.plot)
    check_memory(args.n, args.dtype)
    backend = get_backend(args.backend)
    data = make_dataset(args.n, args.dtype, args.seed)
    result = fit(backend, args.variant, args.device, data, args.steps, args.lr,
                 args.steps_per_call)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        _print_history(result)
    if args.plot:
        from linfit.plots import plot_fit_history

        written = plot_fit_history(result, args.plot)
        if not args.json:
            print(f"figure written to {written}")
    return 0
