"""``linfit explain``: the HLO account of compiled cells in this environment (issue 17).

Each cell is built as ``pytest bench/`` builds it (the same options, resolved by the
harness, the same matrix), called once, and its optimized HLO read from the trainer
(:meth:`linfit.backends.Trainer.compiled_hlo`) and accounted by :mod:`linfit.hlo`. Nothing is
timed; the text goes to stdout, and ``--hlo FILE`` keeps the HLO text of one cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from linfit._errors import LinfitError
from linfit._format import text_table
from linfit._paths import atomic_write_text, output_dir_problem
from linfit.hlo import HloAccount, HloProgram
from linfit.results import Cell

# CELL words of the form KEY=VALUE, and the harness option each sets (by its dest).
CELL_KEYS = {"n": "linfit_sizes", "dtype": "linfit_dtypes", "k": "linfit_steps_per_call",
             "device": "linfit_devices", "convention": "linfit_conventions"}
# The harness options explain takes as flags (as `linfit ab` spells them: --sizes).
OPTION_DESTS = ("linfit_backends", "linfit_variants", "linfit_devices", "linfit_sizes",
                "linfit_profile", "linfit_dtypes", "linfit_steps_per_call",
                "linfit_conventions")
# Kernels listed per cell, the heaviest by bytes per step first (a TensorFlow step has
# about 20; the rest are summed in one line).
MAX_KERNEL_LINES = 25
_HARNESS_FLAG_PREFIX = "--linfit-"

EPILOG = """\
CELL: "[BACKEND:]VARIANT [n=SIZE] [dtype=DTYPE] [k=STEPS] [device=ID] [convention=NAME]",
one argument, words split by spaces; a bare dtype word (float64) works as dtype=. Examples:

  linfit explain "tensorflow:xla-loop n=1e5"
  linfit explain "jit-loop n=1e6 k=50" --hlo jit-loop.hlo.txt
  linfit explain --variants xla,xla-loop,jit,jit-loop --sizes 1e5,1e6

Instead of (or besides) CELL, the options of `pytest bench/` select cells, as `linfit ab`
spells them (--sizes for --linfit-sizes); a CELL word and its option may not both be given.
Whatever is not given is the harness's default (sizes 1e3,1e5,1e6, float32, k=100, every
device); LINFIT_* environment variables are not read. Only cells XLA compiles are
explained: TensorFlow's xla, xla-loop, keras-xla, keras-xla-spe and JAX's jit and
jit-loop.

For each cell: the loops (a while loop's trip count from XLA's known_trip_count, or from
the cell: k - 1 for linfit's loops, whose first step runs before the loop), the kernel
launches per training step (fusions and unfused ops; parameters, constants, tuples,
get-tuple-element and bitcasts are free), the bytes they read and write per step (each
kernel reads its operands and writes its output; a loop body counts once per step), and
their ratio to the read floor (x and y read once: 8n bytes in float32). docs/hlo.md says
more.

exit status: 0 explained; 2 bad input (a bad CELL or option, a cell XLA does not compile,
--hlo with several cells or an existing file without --force)
"""


@dataclass(frozen=True)
class Explained:
    """One cell's account, as explain computes it.

    Attributes:
        cell: the cell's text (:class:`linfit.results.Cell`'s).
        program: the HLO read from the trainer.
        account: its account.
        read_seconds: time to read the HLO from the trainer and parse it.
    """

    cell: str
    program: HloProgram
    account: HloAccount
    read_seconds: float


def _cli_flag(dest: str) -> str:
    from linfit.harness import BY_DEST

    return "--" + BY_DEST[dest].flag.removeprefix(_HARNESS_FLAG_PREFIX)


def register(subparsers: argparse._SubParsersAction) -> None:
    from linfit.harness import BY_DEST

    parser = subparsers.add_parser(
        "explain", help="the HLO account of compiled cells: kernels, loops, bytes per step",
        description="Build each selected cell XLA compiles, call it once, and print the "
                    "account of its optimized HLO: kernels and bytes per training step, loops, "
                    "and bytes over the read floor.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cell", nargs="?", metavar="CELL",
                        help='a cell, e.g. "tensorflow:xla-loop n=1e5" (see below)')
    for dest in OPTION_DESTS:
        option = BY_DEST[dest]
        parser.add_argument(_cli_flag(dest), dest=dest, default=None, metavar=option.metavar,
                            help=option.help)
    parser.add_argument("--hlo", type=Path, metavar="FILE",
                        help="write the optimized HLO text of the (one) selected cell to FILE")
    parser.add_argument("--force", action="store_true", help="replace an existing --hlo FILE")
    parser.set_defaults(func=run)


def cell_values(cell: str | None, flags: dict[str, str | None]) -> dict[str, str | None]:
    """The harness option values of a CELL text and the flags together.

    Args:
        cell: the CELL argument (None: not given).
        flags: the flags' values by the harness's option dest (None: not given).

    Returns:
        Option values by dest, for :func:`linfit.harness.resolve_options`.

    Raises:
        LinfitError: for a CELL word that is not ``KEY=VALUE`` with a known key, a bare
            dtype or the variant; a key given twice; a word and its flag both given.
    """
    from linfit.backends import VARIANTS_BY_BACKEND
    from linfit.data import DTYPES

    values = dict(flags)
    if cell is None:
        return values
    words = cell.split()
    if not words:
        raise LinfitError("CELL is empty; give e.g. \"tensorflow:xla-loop n=1e5\"")
    variant, *rest = words
    if "=" in variant:
        raise LinfitError(f"CELL {cell!r} starts with {variant!r}: give the variant first, "
                          "e.g. \"tensorflow:xla-loop n=1e5\"")
    settings = {"linfit_variants": variant}
    backend, _, name = variant.rpartition(":")
    if backend:
        settings["linfit_backends"] = backend
    else:
        having = [b for b, registry in VARIANTS_BY_BACKEND.items() if name in registry]
        if having:
            settings["linfit_backends"] = ",".join(having)
    for word in rest:
        key, equals, value = word.partition("=")
        if not equals and word in DTYPES:
            key, value = "dtype", word
        elif not equals or key not in CELL_KEYS or not value:
            raise LinfitError(f"CELL word {word!r} is not one of "
                              f"{', '.join(f'{k}=...' for k in CELL_KEYS)} or a dtype "
                              f"({', '.join(DTYPES)})")
        dest = CELL_KEYS[key]
        if dest in settings:
            raise LinfitError(f"CELL gives {key} twice")
        settings[dest] = value
    for dest, value in settings.items():
        if values.get(dest) is not None:
            if dest == "linfit_backends" and values[dest] == value:
                continue
            raise LinfitError(f"CELL sets {dest.removeprefix('linfit_').replace('_', '-')} "
                              f"and {_cli_flag(dest)} does too: give one of them")
        values[dest] = value
    return values


def selected_cells(values: dict[str, str | None]) -> tuple[list[tuple[Cell, str]], int]:
    """The matrix cells XLA compiles (one device each), with their skip reasons ('' where
    they run here), and how many cells the options select that XLA does not compile.

    Raises:
        LinfitError: for bad option values, named as explain spells its flags.
    """
    from linfit.backends import VARIANTS_BY_BACKEND
    from linfit.harness import OPTIONS, build_matrix, resolve_options

    try:
        options = resolve_options(values, {}, Path.cwd(), Path.cwd())
        matrix = build_matrix(options)
    except LinfitError as error:
        # The harness names its options as pytest spells them: say them as explain does.
        message = str(error)
        for option in OPTIONS:
            message = message.replace(f"{option.flag}/{option.env}", _cli_flag(option.dest))
        raise LinfitError(message) from None
    xla = [(entry.cell, entry.skip_reason) for entry in matrix
           if (variant := VARIANTS_BY_BACKEND[entry.cell.backend].get(entry.cell.variant))
           is not None and variant.xla and entry.cell.replicas == 1]
    return xla, len(matrix) - len(xla)


def explain_cell(cell: Cell) -> Explained:
    """Build ``cell`` as the harness does, call it once, and account for its optimized HLO.

    Raises:
        LinfitError: where the trainer has no HLO to give.
    """
    from linfit.backends import get_backend
    from linfit.data import DEFAULT_LEARNING_RATE, DEFAULT_SEED, make_dataset, xy_bytes
    from linfit.hlo import account

    backend = get_backend(cell.backend)
    data = make_dataset(cell.n_examples, cell.dtype, DEFAULT_SEED)
    with backend.session():
        trainer = backend.make_trainer(cell.variant, cell.device, data, DEFAULT_LEARNING_RATE,
                                       cell.steps_per_call, convention=cell.convention)
        trainer.call()
        start = time.perf_counter()
        program = trainer.compiled_hlo()
        if program is None:
            raise LinfitError(f"{cell}: XLA does not compile this cell: no HLO")
        result = account(program, xy_bytes(cell.n_examples, cell.dtype))
        seconds = time.perf_counter() - start
    return Explained(str(cell), program, result, seconds)


def _bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} B"


def render(explained: Explained, n_examples: int, itemsize: int) -> list[str]:
    """The account of one cell as text lines (computes nothing)."""
    result, program = explained.account, explained.program
    per_element = result.bytes_per_step / (n_examples * itemsize)
    loops = ", ".join(f"{loop.name}: trip {loop.trip_count if loop.trip_count is not None else '?'}"
                      f" ({loop.trip_source.replace('_', ' ')})" for loop in result.loops)
    lines = [explained.cell,
             f"  HLO module {result.module or '?'} ({program.source}), read and parsed in "
             f"{explained.read_seconds:.2f} s",
             f"  one execution runs {program.steps_per_execution} training step"
             f"{'s' if program.steps_per_execution != 1 else ''}",
             f"  loops: {result.loops_text}" + (f"  [{loops}]" if loops else ""),
             f"  kernels per step: {result.kernels_per_step:.4g}",
             f"  bytes per step: {_bytes(result.bytes_per_step)} (read "
             f"{_bytes(result.bytes_read_per_step)}, written "
             f"{_bytes(result.bytes_written_per_step)}): {per_element:.3g} n elements",
             f"  read floor (x and y once): {_bytes(result.read_floor_bytes)}; bytes over it: "
             f"{result.bytes_ratio:.3g}x"]
    kernels = sorted(result.kernels, key=lambda k: -(k.bytes_read + k.bytes_written)
                     * k.executions)
    rows: list[list[str] | None] = [["where", "kernel", "runs/step", "read/run",
                                     "written/run", "bytes/step"], None]
    for kernel in kernels[:MAX_KERNEL_LINES]:
        runs = kernel.executions / result.steps_per_execution
        rows.append(["loop body" if kernel.loop_depth else "outside loops", kernel.signature,
                     f"{runs:.3g}", _bytes(kernel.bytes_read), _bytes(kernel.bytes_written),
                     _bytes((kernel.bytes_read + kernel.bytes_written) * runs)])
    lines += ["  kernels, by bytes per step:",
              *text_table(rows, [False, False, True, True, True, True], indent="    ")]
    if len(kernels) > MAX_KERNEL_LINES:
        lines.append(f"    ... and {len(kernels) - MAX_KERNEL_LINES} smaller kernels")
    lines += [f"  note: {note}" for note in result.notes]
    return lines


def _check_hlo_file(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise LinfitError(f"--hlo {path} exists; give --force to replace it")
    if path.exists() and not path.is_file():
        raise LinfitError(f"--hlo {path} is not a regular file")
    problem = output_dir_problem(path.parent if str(path.parent) else Path("."))
    if problem:
        raise LinfitError(f"--hlo {path}: {problem}")


def run(args: argparse.Namespace) -> int:
    from linfit.data import numpy_dtype

    values = cell_values(args.cell, {dest: getattr(args, dest) for dest in OPTION_DESTS})
    if args.hlo is not None:
        _check_hlo_file(args.hlo, args.force)
    cells, left_out = selected_cells(values)
    runnable = [cell for cell, reason in cells if not reason]
    if not cells:
        raise LinfitError("the options select no cell that XLA compiles (tensorflow: xla, "
                          "xla-loop, keras-xla, keras-xla-spe; jax: jit, jit-loop)")
    if args.hlo is not None and len(runnable) != 1:
        raise LinfitError(f"--hlo FILE keeps the HLO of one cell; the options select "
                          f"{len(runnable)}")
    for cell, reason in cells:
        if reason:
            lines = [str(cell), f"  skipped: {reason}"]
        else:
            explained = explain_cell(cell)
            lines = render(explained, cell.n_examples, numpy_dtype(cell.dtype).itemsize)
            if args.hlo is not None:
                atomic_write_text(args.hlo, explained.program.text, overwrite=args.force)
                lines.append(f"  HLO text written to {args.hlo}")
        # Cell by cell, as each is built: a long selection shows its progress.
        sys.stdout.write("\n".join(lines) + "\n\n")
        sys.stdout.flush()
    if left_out:
        print(f"({left_out} selected cells XLA does not compile were left out)")
    return 0

