"""The user-facing error types.

The command line catches :class:`LinfitError` once, prints its message on one line and
exits with status 2. Anything else is a programming error and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["DeviceError", "DivergenceError", "LinfitError", "ResultsFileError"]


class LinfitError(Exception):
    """Raised for bad input: an unknown variant, device or dtype, a bad argument value.

    The message is one line that says what was wrong, where, and what would be valid.
    """


class DeviceError(LinfitError):
    """Raised when a device is unknown, or when a result lands on another device than asked.

    The message lists the devices that exist, or names both devices.
    """


class DivergenceError(LinfitError):
    """Raised by the fit loop when the loss or a weight becomes NaN or infinite.

    The message names the backend, variant, device and the step at which it happened.
    """


class ResultsFileError(LinfitError):
    """Raised when a results CSV cannot be used: missing, empty, not linfit's, a schema
    version this linfit does not know, missing columns, bad values or duplicated cells.

    The message names the file and, where it applies, the row and column.
    """
