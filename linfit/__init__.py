"""linfit: what tf.function and XLA buy a training step, measured and checked on every device.

The public API, for scripts and notebooks; the command line is ``linfit`` (``linfit.cli``).
Importing linfit imports no framework: a backend's framework is imported by
:func:`get_backend` on first use.
"""

import importlib
from typing import Any

from linfit._errors import DeviceError, DivergenceError, LinfitError, ResultsFileError
from linfit.backends import Backend, Device, Trainer, Variant, get_backend, installed_backends
from linfit.data import Dataset, make_dataset
from linfit.fit import FitRecord, FitResult, fit
from linfit.results import (
    COLUMNS,
    SCHEMA_VERSION,
    Cell,
    CellResult,
    Reference,
    ResultSet,
    read_frame,
    read_results,
    write_results,
)

# Imported on first use (PEP 562): they import pandas, which the data layer does not need
# (``import linfit.results.record`` stays free of it).
_LAZY = {"Finding": "linfit.check", "check_frame": "linfit.check",
         "check_results": "linfit.check", "Comparison": "linfit.compare",
         "Decision": "linfit.compare", "compare_files": "linfit.compare",
         "compare_frames": "linfit.compare", "compare_results": "linfit.compare",
         "decide": "linfit.compare"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'linfit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "Backend",
    "Cell",
    "CellResult",
    "Comparison",
    "Dataset",
    "Decision",
    "Device",
    "DeviceError",
    "DivergenceError",
    "Finding",
    "FitRecord",
    "FitResult",
    "LinfitError",
    "Reference",
    "ResultSet",
    "ResultsFileError",
    "Trainer",
    "Variant",
    "check_frame",
    "check_results",
    "compare_files",
    "compare_frames",
    "compare_results",
    "decide",
    "fit",
    "get_backend",
    "installed_backends",
    "make_dataset",
    "read_frame",
    "read_results",
    "write_results",
]

__version__ = "0.1.0"
