"""linfit with one framework installed: the others are never imported, and the command line
works with the one there is.

Each case runs in a fresh interpreter in which the other frameworks look absent:
``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError and makes
``importlib.util.find_spec(name)`` (what ``installed_backends()`` asks) return None, as for a
package that is not installed.
"""

import functools
import sys
import textwrap

import background
import pytest

FRAMEWORKS = ("tensorflow", "jax", "torch")

SCRIPT = textwrap.dedent("""
    import sys

    for blocked in {blocked!r}:
        sys.modules[blocked] = None

    import linfit
    import linfit.backends
    import linfit.cli

    print("installed", linfit.backends.installed_backends())
    for argv in {commands!r}:
        print("status", linfit.cli.main(argv), flush=True)
    print("imported", sorted(name for name in {blocked!r}
                             if sys.modules.get(name) is not None))
""")


# The commands each test runs where only its framework is installed.
JAX_COMMANDS = (["devices"], ["fit", "--backend", "jax", "--variant", "jit", "--steps", "3"],
                ["fit", "--steps", "3"])
TORCH_COMMANDS = (["fit", "--backend", "torch", "--variant", "eager", "--steps", "3"],)


def start_with_only(framework: str, *commands: list[str]) -> None:
    """Queue ``commands`` in an interpreter where only ``framework`` is installed, beside the
    session (tests/background.py)."""
    blocked = tuple(name for name in FRAMEWORKS if name != framework)
    script = SCRIPT.format(blocked=blocked, commands=[list(argv) for argv in commands])
    background.queue(f"only {framework}: {commands}", functools.partial(
        background.run, [sys.executable, "-c", script], timeout=240))


def _run_with_only(framework, *commands):
    """Run linfit commands in one interpreter where only ``framework`` is installed.

    Returns the finished process and its stdout split in one list of lines per command.
    """
    pytest.importorskip(framework, reason=f"{framework} is not installed")
    done = background.result(f"only {framework}: {commands}",
                             functools.partial(start_with_only, framework, *commands))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"installed ['{framework}']"
    assert lines[-1] == "imported []", "a blocked framework was imported"
    outputs, current = [], []
    for line in lines[1:-1]:
        current.append(line)
        if line.startswith("status "):
            outputs.append(current)
            current = []
    return done, outputs


@pytest.mark.background.with_args(functools.partial(start_with_only, "jax", *JAX_COMMANDS))
def test_jax_alone_lists_its_devices_and_fits():
    done, (devices, fitted, default) = _run_with_only("jax", *JAX_COMMANDS)
    assert devices[-1] == "status 0"
    assert devices[:-1] and all(line.startswith("jax ") for line in devices[:-1]), devices
    assert fitted[0].startswith("Epoch  0: W=5.00 b=0.00")
    assert fitted[-1] == "status 0"
    # The default backend, TensorFlow, is absent: one line on stderr and exit status 2.
    assert default == ["status 2"]
    assert done.stderr.strip().splitlines()[-1] == (
        "linfit fit: error: backend 'tensorflow' needs tensorflow, which is not installed: "
        "pip install tensorflow")


@pytest.mark.background.with_args(functools.partial(start_with_only, "torch", *TORCH_COMMANDS))
def test_torch_alone_fits():
    _, (fitted,) = _run_with_only("torch", *TORCH_COMMANDS)
    assert fitted[0].startswith("Epoch  0: W=5.00 b=0.00")
    assert fitted[-1] == "status 0"
