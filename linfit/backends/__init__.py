"""Backends: TensorFlow (the default), JAX and PyTorch, each imported only when used.

linfit runs with any one of them installed; nothing imports a framework that is absent.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util

from linfit._errors import LinfitError
from linfit.backends.base import (
    DEFAULT_STEPS_PER_CALL,
    Backend,
    Device,
    Trainer,
    Variant,
    normalise_device_id,
)
from linfit.backends.variants import VARIANTS_BY_BACKEND

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_STEPS_PER_CALL",
    "VARIANTS_BY_BACKEND",
    "Backend",
    "Device",
    "Trainer",
    "Variant",
    "get_backend",
    "installed_backends",
    "normalise_device_id",
    "variant_names",
]

DEFAULT_BACKEND = "tensorflow"

# backend name -> (linfit module, the framework's import name, the pip extra that installs it)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "tensorflow": ("linfit.backends.tensorflow", "tensorflow", "tensorflow"),
    "jax": ("linfit.backends.jax", "jax", "linfit[jax]"),
    "torch": ("linfit.backends.torch", "torch", "linfit[torch]"),
}


def installed_backends() -> list[str]:
    """Names of the backends whose framework is importable, without importing it."""
    return [name for name, (_, package, _) in BACKENDS.items()
            if importlib.util.find_spec(package) is not None]


@functools.cache
def get_backend(name: str = DEFAULT_BACKEND) -> Backend:
    """The backend called ``name``, imported on first use.

    Raises:
        LinfitError: for an unknown name, or a backend whose framework is not installed.
    """
    if name not in BACKENDS:
        raise LinfitError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    module, package, extra = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise LinfitError(f"backend {name!r} needs {package}, which is not installed: "
                          f"pip install {extra}")
    return importlib.import_module(module).BACKEND


def variant_names() -> str:
    """Every backend's variants as one line, from the registries (no framework is imported):
    ``tensorflow: eager, function, ...; jax: eager, jit, jit-loop; torch: ...``."""
    return "; ".join(f"{backend}: {', '.join(VARIANTS_BY_BACKEND[backend])}"
                     for backend in BACKENDS)
