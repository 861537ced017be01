"""Many ``linfit`` command lines in one fresh interpreter.

A fresh interpreter per command line costs a second or more of imports (``linfit floors``
loads TensorFlow, JAX and PyTorch: several seconds), and the tests of refusals run dozens.
:func:`linfit_each` runs them all in one child, each through :func:`linfit.cli.main` as
``python -m linfit`` would, with its own exit status, stdout and stderr; anything written to
the child's own stderr besides them (a framework's start-up noise, a warning) fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import background

ROOT = Path(__file__).resolve().parent.parent

# Reads the command lines (JSON) from its argument; prints [status, stdout, stderr] for each.
_EACH_IN_ONE_INTERPRETER = textwrap.dedent("""
    import contextlib
    import io
    import json
    import sys

    from linfit.cli import main

    replies = []
    for args in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(args)
        replies.append([status, out.getvalue(), err.getvalue()])
    print(json.dumps(replies))
""")


def linfit_each(cases: list[list[str]], timeout: float) -> list[subprocess.CompletedProcess]:
    """``linfit ARGS`` for each ARGS of ``cases``, in one interpreter started in the
    repository root with this checkout's linfit, within ``timeout`` seconds in all (a
    child of :func:`background.run`: a test may call this, and so may a job beside the
    session).

    Returns:
        One CompletedProcess per case (args ``["linfit", *ARGS]``), as a child of its own
        would give it.
    """
    done = background.run([sys.executable, "-c", _EACH_IN_ONE_INTERPRETER, json.dumps(cases)],
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    return [subprocess.CompletedProcess(["linfit", *args], status, stdout, stderr)
            for args, (status, stdout, stderr) in zip(cases, json.loads(done.stdout),
                                                      strict=True)]
