"""The tutorial's synthetic data and its closed-form reference solution.

Data come from NumPy with a fixed seed, never from a framework's random streams (which
differ between devices and versions), so every variant, device and backend trains on
byte-identical inputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from linfit._errors import LinfitError

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_N_EXAMPLES",
    "DEFAULT_SEED",
    "DTYPES",
    "INITIAL_B",
    "INITIAL_W",
    "TRUE_B",
    "TRUE_W",
    "Dataset",
    "make_dataset",
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
        LinfitError: for n_examples < 2 or an unknown dtype.
    """
    if n_examples < 2:
        raise LinfitError(f"n_examples must be at least 2, got {n_examples}")
    target = numpy_dtype(dtype)
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
