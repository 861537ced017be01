"""Test-only: hides TensorFlow from a ``linfit ab`` worker (``LINFIT_WORKER_PLUGINS``), as
an environment without it would be: ``importlib.util.find_spec("tensorflow")`` is None."""

import sys

sys.modules["tensorflow"] = None  # type: ignore[assignment]
