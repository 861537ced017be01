"""linfit: what tf.function and XLA buy a training step, measured and checked on every device.

The public API, for scripts and notebooks; the command line is ``linfit`` (``linfit.cli``).
Importing linfit imports no framework: a backend's framework is imported by
:func:`get_backend` on first use.
"""

from linfit._errors import DeviceError, DivergenceError, LinfitError, ResultsFileError
from linfit.backends import Backend, Device, Trainer, Variant, get_backend, installed_backends
from linfit.check import Finding, check_frame, check_results
from linfit.compare import (
    Comparison,
    Decision,
    compare_files,
    compare_frames,
    compare_results,
    decide,
)
from linfit.data import Dataset, make_dataset
from linfit.fit import FitRecord, FitResult, fit
from linfit.record import CellResult, Reference
from linfit.results import (
    COLUMNS,
    SCHEMA_VERSION,
    Cell,
    ResultSet,
    read_frame,
    read_results,
    write_results,
)

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
