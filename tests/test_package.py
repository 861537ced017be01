"""The package's public face: its __all__, and that importing it imports no framework."""

import subprocess
import sys

import linfit


def test_every_public_name_exists():
    assert all(hasattr(linfit, name) for name in linfit.__all__)


def test_importing_linfit_imports_no_framework():
    code = ("import sys, linfit, linfit.cli; "
            "print(sorted(m for m in ('tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
