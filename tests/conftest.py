"""Shared fixtures: the TensorFlow backend (skipped with a reason where TensorFlow is absent),
and for the backend tests, trainers built once and every backend's CPU eager run; the
children queued to run beside the session (tests/background.py)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import background
import pytest
from backend_helpers import (
    LEARNING_RATE,
    N_EXAMPLES,
    backend_or_skip,
    start_on_a_second_cpu,
    steps_per_call,
)

from linfit.backends import Backend, Trainer, get_backend
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import make_dataset
from linfit.fit import FitResult, fit


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts a background job (`pytest tests/ &`) with SIGINT ignored, and children
    # inherit an ignored signal: the tests that send a child Ctrl-C would then fail. Handled
    # here, the children start with SIGINT's default (and Python's KeyboardInterrupt).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers", "second_cpu(backend, split_cpu, data_device, weights_device): the test "
        "trains every variant on a second CPU device in a fresh interpreter, queued when "
        "collection ends (see backend_helpers.train_on_a_second_cpu)")
    config.addinivalue_line(
        "markers", "background(start): start() queues the test's costly child to run beside "
        "the session when collection ends; the test takes its result (tests/background.py)")


def _runs_beside(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None
               for name in ("second_cpu", "background"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests whose children run beside the session last, so that those children,
    queued when collection ends, have the whole session to finish in, beside the other
    tests."""
    items.sort(key=_runs_beside)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Queue the selected tests' children now, in the order the tests will run: they then
    run beside the other tests."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        for marker in item.iter_markers("second_cpu"):
            start_on_a_second_cpu(*marker.args)
        for marker in item.iter_markers("background"):
            marker.args[0]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.stop()


@pytest.fixture(scope="session")
def tf_backend() -> Backend:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    return get_backend("tensorflow")


@pytest.fixture(scope="session")
def trainers() -> Callable[..., Trainer]:
    """``trainers(backend, variant, device="CPU:0")``: one trainer per (backend, variant,
    device), built on first use on N_EXAMPLES float32 examples (a loop variant with
    LOOP_STEPS_PER_CALL steps per call) and handed out reset, at LEARNING_RATE.

    torch.compile takes seconds per trainer on a CPU, so every test that can starts a trainer
    again from W=5, b=0 rather than build its own.
    """
    built: dict[tuple[str, str, str], Trainer] = {}

    def get(backend: Backend, variant: str, device: str = "CPU:0") -> Trainer:
        key = (backend.name, variant, device)
        if key not in built:
            with backend.session():
                built[key] = backend.make_trainer(variant, device, make_dataset(N_EXAMPLES),
                                                  LEARNING_RATE, steps_per_call(backend, variant))
        trainer = built[key]
        trainer.reset()
        trainer.set_learning_rate(LEARNING_RATE)
        return trainer

    return get


@pytest.fixture(scope="session")
def cpu_eager() -> Callable[[str, str], FitResult]:
    """``cpu_eager(backend_name, dtype)``: that backend's eager run on CPU:0, the reference its
    variants are checked against; computed once (skips when the framework is absent)."""
    done: dict[tuple[str, str], FitResult] = {}

    def get(backend_name: str, dtype: str = "float32") -> FitResult:
        if (backend_name, dtype) not in done:
            done[backend_name, dtype] = fit(backend_or_skip(backend_name), "eager", "CPU:0",
                                            make_dataset(N_EXAMPLES, dtype), CONVERGENCE_STEPS,
                                            LEARNING_RATE)
        return done[backend_name, dtype]

    return get
