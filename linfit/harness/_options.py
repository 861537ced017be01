"""The options of ``pytest bench/``: each a flag and an environment variable, resolved once.

:data:`OPTIONS` declares them (``bench/conftest.py`` registers each with pytest);
:func:`resolve_options` turns flag values and the environment into :class:`HarnessOptions`,
or raises a :class:`~linfit._errors.LinfitError` naming the option and what would be valid.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from linfit._errors import LinfitError
from linfit.backends import (
    BACKENDS,
    DEFAULT_STEPS_PER_CALL,
    installed_backends,
    normalise_device_id,
)
from linfit.backends.variants import (
    DEFAULT_TENSORFLOW_CONVENTION,
    KERAS_VARIANTS,
    TENSORFLOW_CONVENTIONS,
)
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import DEFAULT_LEARNING_RATE, DEFAULT_SEED, DTYPES

# The default sizes: 1e3 is bound by dispatch, 1e6 by memory traffic on a CPU,
# 1e5 lies between.
DEFAULT_SIZES = (1_000, 100_000, 1_000_000)
# What --linfit-profile full adds (where memory allows): at 1e8, x and y in float32 are 800 MB.
FULL_PROFILE_EXTRA_SIZES = (10_000_000, 100_000_000)
# float32 only by default, to keep the default matrix within the 3 minutes on 2 cores.
DEFAULT_DTYPES = ("float32",)
DEFAULT_RESULTS_DIR = "results"
# The quick profile's time per cell (pytest-benchmark's max_time): a quarter of
# pytest-benchmark's 1 s default, as bench/gpu_check.sh uses. A call under 250 us still gets
# the 1000 rounds linfit.stats resamples at most (MAX_BOOTSTRAP_SAMPLES), and every call at
# least --benchmark-min-rounds (5, the MIN_SAMPLES an interval needs). Issue 19: the default
# run in at most 90 s on the 2-core VM; in the standard matrix (results/cpu-2core-v4) timed
# rounds took 66 s of its 159 s, about 30 s of them beyond 0.25 s a cell.
QUICK_MAX_TIME_SECONDS = 0.25
# Keras' model.fit variants, which the quick profile runs at the smallest size only: 0.04 to
# 1.3 s a call at 1e5 and 1e6 on the 2-core VM, and each cell makes 12 or more calls (first
# call, warm-up, calibration, 5 rounds, the convergence steps): 64 s of the standard matrix
# (46 s of it run_eagerly), results/cpu-2core-v4.
KERAS_FIT_VARIANTS = tuple(f"tensorflow:{name}" for name in KERAS_VARIANTS)


@dataclass(frozen=True)
class Profile:
    """A named matrix of ``pytest bench/`` (``--linfit-profile``).

    Attributes:
        name: what ``--linfit-profile`` takes.
        summary: one line for the option's help.
        extra_sizes: sizes added to ``--linfit-sizes`` (or the default sizes).
        smallest_size_only: variants (``backend:variant``) run only at the smallest of the
            sizes, unless ``--linfit-variants`` names variants (then the named ones run at
            every size).
        max_time_seconds: pytest-benchmark's max_time for each cell, where
            ``--benchmark-max-time`` is not given; None: pytest-benchmark's own (1 s).
    """

    name: str
    summary: str
    extra_sizes: tuple[int, ...] = ()
    smallest_size_only: tuple[str, ...] = ()
    max_time_seconds: float | None = None


PROFILES: dict[str, Profile] = {profile.name: profile for profile in (
    Profile("quick", "every variant at every size, but Keras' model.fit ones (keras-*) at "
            "the smallest only unless --linfit-variants names them, each cell timed for "
            f"{QUICK_MAX_TIME_SECONDS:g} s but at least --benchmark-min-rounds rounds (5)",
            smallest_size_only=KERAS_FIT_VARIANTS, max_time_seconds=QUICK_MAX_TIME_SECONDS),
    Profile("standard", "every variant at every size, each cell timed for "
            "--benchmark-max-time (1 s)"),
    Profile("full", "standard plus 1e7 and 1e8 examples where memory allows",
            extra_sizes=FULL_PROFILE_EXTRA_SIZES),
)}
DEFAULT_PROFILE = "quick"


@dataclass(frozen=True)
class Option:
    """One harness option: pytest's dest name, its flag, its environment variable, its help."""

    dest: str
    flag: str
    env: str
    metavar: str
    help: str

    @property
    def label(self) -> str:
        """How error messages name the option: both spellings."""
        return f"{self.flag}/{self.env}"


def _option(name: str, metavar: str, help_text: str) -> Option:
    return Option(f"linfit_{name}", f"--linfit-{name.replace('_', '-')}",
                  f"LINFIT_{name.upper()}", metavar, help_text)


OPTIONS: tuple[Option, ...] = (
    _option("backends", "NAMES", "comma-separated backends (default: every installed backend)"),
    _option("variants", "NAMES", "comma-separated variants; 'eager' selects every backend's "
            "eager, 'tensorflow:xla' one backend's (default: all)"),
    _option("devices", "IDS", "comma-separated device ids such as CPU:0,GPU:0, or a kind "
            "(CPU, GPU) for all of that kind (default: every visible device)"),
    _option("sizes", "SIZES", "comma-separated data set sizes (default: "
            + ",".join(f"{n:.0e}".replace("+0", "") for n in DEFAULT_SIZES) + ")"),
    _option("profile", "PROFILE", "; ".join(f"{profile.name}: {profile.summary}"
                                             for profile in PROFILES.values())
            + ". A --benchmark-max-time given wins over the profile's time per cell "
            f"(default: {DEFAULT_PROFILE})"),
    _option("dtypes", "DTYPES", f"comma-separated dtypes from {', '.join(DTYPES)} "
            f"(default: {','.join(DEFAULT_DTYPES)})"),
    _option("steps_per_call", "K", "steps per call of the loop variants, a divisor of "
            f"{CONVERGENCE_STEPS} (default: {DEFAULT_STEPS_PER_CALL})"),
    _option("results", "DIR", f"folder for the results CSV (default: {DEFAULT_RESULTS_DIR}/ "
            "in pytest's rootdir)"),
    _option("floors", "MODE", "hardware floors for the efficiency columns, each the best of "
            "several probe rounds: cache (this machine's recent rounds, cached in "
            "~/.cache/linfit, and one more at the end of each run), measure (rounds at the "
            "start, every 2 minutes between cells and at the end, nothing cached), or off "
            "(default: cache)"),
    _option("baseline", "CSV", "a results CSV to gate on: after the run, linfit check's rules "
            "compare this run with it and a regression fails the session"),
    _option("replicas", "COUNTS", "comma-separated replica counts for the distributed variants "
            "(MirroredStrategy, MultiWorkerMirroredStrategy, JAX sharding); any count above 1 "
            "adds them to the matrix at every count given, the one-device variants stay at 1 "
            "(default: 1, no distributed variant unless named in --linfit-variants)"),
    _option("hlo", "MODE", "on: the HLO account of every cell XLA compiles in the results "
            "(kernels, loops and bytes per step; TensorFlow runs XLA's HLO passes again: "
            "about 0.1-0.6 s a cell on a 2-core VM), off: none (default: on)"),
    _option("conventions", "NAMES", "how TensorFlow's compiled variants are called: "
            f"comma-separated from {', '.join(TENSORFLOW_CONVENTIONS)}, or all: each its own "
            f"cell (default: {DEFAULT_TENSORFLOW_CONVENTION}, the fastest a user can write)"),
)
FLOORS_MODES = ("cache", "measure", "off")
HLO_MODES = ("on", "off")
BY_DEST = {option.dest: option for option in OPTIONS}


@dataclass(frozen=True)
class HarnessOptions:
    """The resolved options of one benchmark session.

    ``variants`` and ``devices`` are None when every one is selected. ``profile`` names a
    :data:`PROFILES` entry; ``sizes`` already hold the sizes it adds. The reference each
    cell's weights are checked against is :func:`linfit.convergence.reference_for`'s.
    """

    backends: tuple[str, ...]
    variants: tuple[str, ...] | None
    devices: tuple[str, ...] | None
    sizes: tuple[int, ...]
    profile: str
    dtypes: tuple[str, ...]
    steps_per_call: int
    results_dir: Path
    floors: str = "cache"
    baseline: Path | None = None
    # None: each compiled TensorFlow variant with its default convention only.
    conventions: tuple[str, ...] | None = None
    # Replica counts of the distributed variants; (1,): none unless named.
    replicas: tuple[int, ...] = (1,)
    # Whether each cell XLA compiles gets the HLO account's columns (issue 17).
    hlo: bool = True
    learning_rate: float = DEFAULT_LEARNING_RATE
    seed: int = DEFAULT_SEED


def available_backends() -> list[str]:
    """Backends whose framework is installed and whose linfit module exists, without
    importing either."""
    return [name for name in installed_backends()
            if importlib.util.find_spec(BACKENDS[name][0]) is not None]


def _items(option: Option, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise LinfitError(f"{option.label}: {text!r} names nothing; give a comma-separated list")
    return items


def parse_sizes(text: str, option: Option = BY_DEST["linfit_sizes"]) -> tuple[int, ...]:
    """Data set sizes from ``"1e3,1e5"``: sorted, without repeats.

    Raises:
        LinfitError: naming the option, for an entry that is not an integer >= 2.
    """
    sizes = set()
    for item in _items(option, text):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value.is_integer() and value >= 2):
            raise LinfitError(f"{option.label}: {item!r} is not a data set size; give integers "
                              ">= 2 such as 1e3,1e5,1e6")
        sizes.add(int(value))
    return tuple(sorted(sizes))


def parse_replicas(text: str, option: Option = BY_DEST["linfit_replicas"]) -> tuple[int, ...]:
    """Replica counts from ``"1,2"``: sorted, without repeats.

    Raises:
        LinfitError: naming the option, for an entry that is not an integer >= 1.
    """
    counts = set()
    for item in _items(option, text):
        if not (item.isdigit() and int(item) >= 1):
            raise LinfitError(f"{option.label}: {item!r} is not a replica count; give integers "
                              ">= 1 such as 1,2")
        counts.add(int(item))
    return tuple(sorted(counts))


def _choose(option: Option, text: str, valid: Sequence[str]) -> tuple[str, ...]:
    chosen = []
    for item in _items(option, text):
        if item not in valid:
            raise LinfitError(f"{option.label}: unknown {item!r}; valid: {', '.join(valid)}")
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)


def _steps_per_call(option: Option, text: str) -> int:
    divisors = [k for k in range(1, CONVERGENCE_STEPS + 1) if CONVERGENCE_STEPS % k == 0]
    if not (text.strip().isdigit() and int(text) in divisors):
        # The convergence check runs CONVERGENCE_STEPS steps in whole calls.
        raise LinfitError(f"{option.label}: {text!r} must divide the {CONVERGENCE_STEPS} "
                          f"convergence steps: one of {', '.join(map(str, divisors))}")
    return int(text)


def resolve_options(values: Mapping[str, str | None], environ: Mapping[str, str],
                    rootdir: Path, invocation_dir: Path) -> HarnessOptions:
    """The session's options: a flag wins over its environment variable, which wins over
    the default. An empty environment variable counts as unset.

    Args:
        values: flag values by :attr:`Option.dest`, None where the flag was not given.
        environ: the environment (``os.environ``).
        rootdir: pytest's rootdir; the default results folder is ``results/`` in it.
        invocation_dir: where pytest was started; relative ``--linfit-results`` paths
            start there.

    Raises:
        LinfitError: naming the option and what would be valid.
    """
    given = {}
    for option in OPTIONS:
        text = values.get(option.dest)
        given[option.dest] = text if text is not None else (environ.get(option.env) or None)

    def get(name: str) -> str | None:
        return given[f"linfit_{name}"]

    available = available_backends()
    if not available:
        raise LinfitError(f"no backend is installed; install one of: {', '.join(BACKENDS)}")
    text = get("backends")
    backends = (_choose(BY_DEST["linfit_backends"], text, available) if text
                else tuple(available))
    text = get("variants")
    variants = tuple(dict.fromkeys(_items(BY_DEST["linfit_variants"], text))) if text else None
    text = get("devices")
    devices = (tuple(dict.fromkeys(normalise_device_id(d)
                                   for d in _items(BY_DEST["linfit_devices"], text)))
               if text else None)
    text = get("profile")
    profile = (_choose(BY_DEST["linfit_profile"], text, tuple(PROFILES))[0] if text
               else DEFAULT_PROFILE)
    text = get("sizes")
    sizes = parse_sizes(text) if text else DEFAULT_SIZES
    sizes = tuple(sorted(set(sizes) | set(PROFILES[profile].extra_sizes)))
    text = get("dtypes")
    dtypes = _choose(BY_DEST["linfit_dtypes"], text, DTYPES) if text else DEFAULT_DTYPES
    text = get("steps_per_call")
    steps_per_call = (_steps_per_call(BY_DEST["linfit_steps_per_call"], text) if text
                      else DEFAULT_STEPS_PER_CALL)
    text = get("results")
    results_dir = (invocation_dir / Path(text).expanduser() if text
                   else rootdir / DEFAULT_RESULTS_DIR)
    text = get("floors")
    floors = _choose(BY_DEST["linfit_floors"], text, FLOORS_MODES)[0] if text else "cache"
    text = get("baseline")
    baseline = invocation_dir / Path(text).expanduser() if text else None
    text = get("replicas")
    replicas = parse_replicas(text) if text else (1,)
    text = get("hlo")
    hlo = (_choose(BY_DEST["linfit_hlo"], text, HLO_MODES)[0] if text else "on") == "on"
    text = get("conventions")
    conventions = None
    if text:
        chosen = _choose(BY_DEST["linfit_conventions"], text, (*TENSORFLOW_CONVENTIONS, "all"))
        conventions = tuple(TENSORFLOW_CONVENTIONS) if "all" in chosen else chosen
    return HarnessOptions(backends=backends, variants=variants, devices=devices, sizes=sizes,
                          profile=profile, dtypes=dtypes, steps_per_call=steps_per_call,
                          results_dir=results_dir, floors=floors,
                          baseline=baseline, conventions=conventions, replicas=replicas,
                          hlo=hlo)

