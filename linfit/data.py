"""The tutorial's synthetic data and its closed-form reference solution.

Data come from NumPy with a fixed seed, never from a framework's random streams (which
differ between devices and versions), so every variant, device and backend trains on
byte-identical inputs.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linfit._errors import LinfitError

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_N_EXAMPLES",
    "DEFAULT_SEED",
    "DTYPES",
    "INITIAL_B",
    "INITIAL_W",
    "MEMORY_HEADROOM",
    "TRUE_B",
    "TRUE_W",
    "Dataset",
    "available_memory_bytes",
    "check_memory",
    "make_dataset",
    "memory_needed_bytes",
    "memory_problem",
    "xy_bytes",
]

# The numbers of TensorFlow's "custom training: basics" tutorial.
TRUE_W = 3.0
TRUE_B = 2.0
INITIAL_W = 5.0
INITIAL_B = 0.0
DEFAULT_N_EXAMPLES = 1000
DEFAULT_LEARNING_RATE = 0.1
DEFAULT_SEED = 0

# Supported dtypes, by the name used on the command line and in result files.
DTYPES = ("float32", "float64", "bfloat16", "float16")

# Memory a CPU cell needs, in multiples of its x and y bytes: NumPy's arrays, their copy in
# the framework, and the step's elementwise temporaries (x*W + b - y, its square and the
# gradient terms: about two more arrays of x's size).
MEMORY_HEADROOM = 4
# make_dataset draws x, the noise and y in float64 before rounding them to the dtype: three
# float64 arrays of n beside the rounded x and y, its peak (more than the headroom above
# for the 2-byte dtypes).
GENERATION_FLOAT64_ARRAYS = 3
_FLOAT64_BYTES = 8
_GIB = 2**30


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for a linfit dtype name (bfloat16 comes from ml_dtypes).

    Raises:
        LinfitError: for a name not in :data:`DTYPES`.
    """
    if dtype not in DTYPES:
        raise LinfitError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if dtype == "bfloat16":
        # ml_dtypes ships with both TensorFlow and JAX; imported here so that the
        # other dtypes need neither.
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def xy_bytes(n_examples: int, dtype: str) -> int:
    """The bytes of x and y: what a step must read at least (the read floor's bytes,
    8n in float32).

    Raises:
        LinfitError: for an unknown dtype.
    """
    return 2 * n_examples * numpy_dtype(dtype).itemsize


def memory_needed_bytes(n_examples: int, dtype: str) -> int:
    """Bytes of memory a data set of ``n_examples`` in ``dtype`` needs at its peak on the CPU.

    The larger of training it (:data:`MEMORY_HEADROOM` times the bytes of x and y) and
    generating it (:data:`GENERATION_FLOAT64_ARRAYS` float64 arrays, then x and y).

    Raises:
        LinfitError: for an unknown dtype.
    """
    data_bytes = 2 * n_examples * numpy_dtype(dtype).itemsize
    return max(MEMORY_HEADROOM * data_bytes,
               GENERATION_FLOAT64_ARRAYS * _FLOAT64_BYTES * n_examples + data_bytes)


def available_memory_bytes() -> int | None:
    """Memory the system can give without swapping: MemAvailable, else free pages; None
    where neither can be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def memory_problem(n_examples: int, dtype: str, available_bytes: int | None) -> str:
    """Why a data set of ``n_examples`` in ``dtype`` cannot be held here, naming the bytes
    needed against ``available_bytes``; '' when it fits or nothing is known.

    The one memory estimate: ``linfit fit``, :func:`make_dataset` and the harness's matrix
    (which skips such cells) all use it.
    """
    if available_bytes is None:
        return ""
    needed = memory_needed_bytes(n_examples, dtype)
    if needed <= available_bytes:
        return ""
    return (f"n={n_examples:g} {dtype} needs about {needed / _GIB:,.1f} GiB of memory on the "
            f"CPU (the data, the framework's copy and the step's temporaries); "
            f"{available_bytes / _GIB:,.1f} GiB is available")


def check_memory(n_examples: int, dtype: str, available_bytes: int | None = None) -> None:
    """Refuse, before anything is allocated, a data set that cannot fit in memory.

    Args:
        n_examples, dtype: the data set.
        available_bytes: memory available; default: :func:`available_memory_bytes` now.

    Raises:
        LinfitError: see :func:`memory_problem`.
    """
    available = available_memory_bytes() if available_bytes is None else available_bytes
    problem = memory_problem(n_examples, dtype, available)
    if problem:
        raise LinfitError(problem)


@dataclass(frozen=True, eq=False)
class Dataset:
    """x ~ N(0, 1), y = 3 x + 2 + N(0, 1), rounded to ``dtype``, with its OLS fit.

    ``x`` and ``y`` are read-only NumPy arrays of ``dtype``. ``w_ols`` and ``b_ols`` are the
    float64 closed-form least-squares solution of exactly those (rounded) values: the
    reference every run is checked against.
    """

    x: np.ndarray
    y: np.ndarray
    seed: int
    dtype: str
    w_ols: float
    b_ols: float

    @property
    def n_examples(self) -> int:
        return int(self.x.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of x and y together: what one step must read at least once."""
        return int(self.x.nbytes + self.y.nbytes)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Closed-form least squares of y on (x, 1) in float64, centred for accuracy."""
    x64 = x.astype(np.float64)
    y64 = y.astype(np.float64)
    x_mean = x64.mean()
    y_mean = y64.mean()
    dx = x64 - x_mean
    w = float(np.dot(dx, y64 - y_mean) / np.dot(dx, dx))
    return w, float(y_mean - w * x_mean)


@functools.lru_cache(maxsize=4)
def make_dataset(n_examples: int, dtype: str = "float32", seed: int = DEFAULT_SEED) -> Dataset:
    """Generate the tutorial's data set (cached: the same arguments give the same object).

    Args:
        n_examples: number of (x, y) pairs, at least 2.
        dtype: one of :data:`DTYPES`; values are drawn in float64 and rounded once.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        The data set and its float64 OLS reference.

    Raises:
        LinfitError: for n_examples < 2, a negative seed, an unknown dtype, or a data set
            that cannot fit in the memory available (refused before it is allocated).
    """
    if n_examples < 2:
        raise LinfitError(f"n_examples must be at least 2, got {n_examples}")
    if seed < 0:
        raise LinfitError(f"the seed must be an integer >= 0, got {seed}")
    target = numpy_dtype(dtype)
    check_memory(n_examples, dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n_examples)
    noise = rng.standard_normal(n_examples)
    y = TRUE_W * x + TRUE_B + noise
    x = x.astype(target)
    y = y.astype(target)
    x.flags.writeable = False
    y.flags.writeable = False
    w_ols, b_ols = _ols(x, y)
    return Dataset(x=x, y=y, seed=seed, dtype=dtype, w_ols=w_ols, b_ols=b_ols)
