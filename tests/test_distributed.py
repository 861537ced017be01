"""linfit.distributed and linfit.backends.tf_distributed: the data-parallel variants converge
to the single-device reference, their workers are cleaned up however a cell ends, and bad
TF_CONFIGs, taken ports and too many replicas are one clear error each.

Each worker is a fresh interpreter (3-5 s to import its framework on 2 cores): the tests
start as few as they can, at n=1000. None can hang: every request to a worker has a time
limit (linfit.distributed.trainer.BUILD_TIMEOUT_SECONDS, CALL_TIMEOUT_SECONDS), after which
the worker is killed and the test fails. The costliest trainings run beside the session
(tests/background.py): their jobs only talk to the workers; the tests check what they saw.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import background
import pytest

from linfit._errors import LinfitError
from linfit.backends import Device, get_backend
from linfit.convergence import CONVERGENCE_STEPS, convergence_problems
from linfit.data import make_dataset
from linfit.distributed import (
    DISTRIBUTED_VARIANTS,
    WorkerFailed,
    check_port_free,
    check_tf_config,
    free_ports,
    open_trainer,
    tf_config,
)
from linfit.distributed._protocol import LIFETIME_ENV
from linfit.fit import fit, train

N_EXAMPLES = 1000
LEARNING_RATE = 0.1
CPU = {"tensorflow": Device("tensorflow", "CPU:0", "CPU", "cpu"),
       "jax": Device("jax", "CPU:0", "CPU", "cpu")}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _train_on_two_replicas(backend: str, variant: str, *, kill_worker_1: bool = False,
                           ) -> dict[str, Any]:
    """From a job beside the session (tests/background.py; the workers are the costly part,
    and nothing of a framework runs in this process): train ``variant`` with two replicas
    for CONVERGENCE_STEPS; with ``kill_worker_1``, then kill worker 1 and call once more.
    What the test checks, once every worker has stopped."""
    data = make_dataset(N_EXAMPLES, "float32")
    ports = free_ports(2) if kill_worker_1 else None
    with open_trainer(backend, DISTRIBUTED_VARIANTS[backend][variant], CPU[backend], data,
                      LEARNING_RATE, 2, ports=ports) as trainer:
        train(trainer, CONVERGENCE_STEPS)
        # weights() also checks that every replica of every worker holds the same W and b.
        facts: dict[str, Any] = {"weights": trainer.weights(), "ports": ports or [],
                                 "placement": trainer.check_placement(),
                                 "traces": trainer.traces,
                                 "pids": [worker.process.pid for worker in trainer.workers]}
        if kill_worker_1:
            os.kill(facts["pids"][1], signal.SIGKILL)
            try:
                trainer.call()
            except WorkerFailed as failed:
                facts["failure"] = str(failed)
    facts["gone"] = [_gone(pid) for pid in facts["pids"]]
    return facts


def _training_key(backend: str, variant: str, kill_worker_1: bool) -> str:
    return f"two replicas: {backend} {variant}" + (", then worker 1 killed" if kill_worker_1
                                                   else "")


def start_training(backend: str, variant: str, kill_worker_1: bool = False) -> None:
    if importlib.util.find_spec(backend) is not None:
        background.queue(_training_key(backend, variant, kill_worker_1), functools.partial(
            _train_on_two_replicas, backend, variant, kill_worker_1=kill_worker_1))


def _converged_on_two_replicas(backend: str, variant: str, kill_worker_1: bool = False,
                               ) -> dict[str, Any]:
    """The job's training of ``variant``, checked against the single-device eager
    reference: converged, on the device asked for, traced once if compiled, every worker
    gone afterwards. What the job saw, for the test's own checks."""
    pytest.importorskip(backend)
    facts = background.result(_training_key(backend, variant, kill_worker_1),
                              functools.partial(start_training, backend, variant,
                                                kill_worker_1))
    data = make_dataset(N_EXAMPLES, "float32")
    spec = DISTRIBUTED_VARIANTS[backend][variant]
    reference = fit(get_backend(backend), "eager", "CPU:0", data, CONVERGENCE_STEPS,
                    LEARNING_RATE)
    assert facts["placement"] == "CPU:0"
    assert facts["traces"] == int(spec.compiled)
    assert len(facts["pids"]) == (2 if spec.processes_per_replica else 1)
    final_w, final_b = facts["weights"]
    assert convergence_problems(final_w, final_b, reference.final_w, reference.final_b,
                                data.w_ols, data.b_ols, "float32") == []
    assert all(facts["gone"])
    return facts


# multi-worker-function converges in the killed-worker test below, on the same two workers.
@pytest.mark.parametrize(("backend", "variant"), [
    pytest.param(backend, variant, marks=pytest.mark.background.with_args(
        functools.partial(start_training, backend, variant)))
    for backend, variant in [("tensorflow", "mirrored-function"),
                             ("tensorflow", "mirrored-eager"), ("jax", "sharded-jit")]])
def test_two_replicas_converge_to_the_single_device_reference(backend, variant):
    _converged_on_two_replicas(backend, variant)


def _xla_under_mirrored() -> dict[str, Any]:
    """From a job beside the session: the cell's first call, then an interrupt inside the
    trainer's block (Ctrl-C; SIGTERM in a harness session), as KeyboardInterrupt."""
    data = make_dataset(N_EXAMPLES, "float32")
    spec = DISTRIBUTED_VARIANTS["tensorflow"]["mirrored-xla"]
    facts: dict[str, Any] = {}
    try:
        with open_trainer("tensorflow", spec, CPU["tensorflow"], data, LEARNING_RATE,
                          2) as trainer:
            try:
                trainer.call()
            except WorkerFailed as failed:
                facts["failure"] = str(failed)
            facts["pid"] = trainer.workers[0].process.pid
            facts["alive after the failure"] = not _gone(facts["pid"])
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        facts["interrupted"] = True
    facts["gone"] = _gone(facts["pid"])
    return facts


def start_xla_under_mirrored() -> None:
    if importlib.util.find_spec("tensorflow") is not None:
        background.queue("xla under mirrored", _xla_under_mirrored)


@pytest.mark.background.with_args(start_xla_under_mirrored)
def test_xla_under_mirrored_on_two_cpus_fails_with_tensorflows_reason_then_an_interrupt_kills_it():
    """TensorFlow 2.21 does not compile a step whose variables live on two devices: the
    cell fails, saying so, rather than being skipped. The worker, alive after that answer,
    is then killed by Ctrl-C (SIGTERM in a harness session) as any worker is."""
    pytest.importorskip("tensorflow")
    facts = background.result("xla under mirrored", start_xla_under_mirrored)
    assert "worker 0 (chief)" in facts["failure"]
    assert "xla" in facts["failure"].lower()
    assert facts["alive after the failure"]
    assert facts["interrupted"] and facts["gone"]


@pytest.mark.background.with_args(functools.partial(start_training, "tensorflow",
                                                    "multi-worker-function", True))
def test_two_workers_converge_then_a_killed_one_fails_its_cell_leaving_no_process_or_port():
    """multi-worker-function: two workers (fresh interpreters, the costliest cell here)
    converge to the reference; then worker 1 is killed, and the next call fails naming it."""
    facts = _converged_on_two_replicas("tensorflow", "multi-worker-function",
                                       kill_worker_1=True)
    assert re.search(r"worker 1 \(worker\): killed by signal 9", facts["failure"])
    for port in facts["ports"]:
        check_port_free(port)


def test_a_worker_that_dies_fails_with_its_stderr():
    data = make_dataset(N_EXAMPLES, "float32")
    spec = DISTRIBUTED_VARIANTS["tensorflow"]["mirrored-eager"]
    # A lifetime shorter than the import of TensorFlow: the watchdog ends the worker.
    env = {**os.environ, LIFETIME_ENV: "0.5"}
    with pytest.raises(WorkerFailed) as died, open_trainer(
            "tensorflow", spec, CPU["tensorflow"], data, LEARNING_RATE, 1, environments=[env]):
        pass
    message = str(died.value)
    assert "worker 0 (chief): exited with status 3" in message
    assert "its stderr: " in message and "its lifetime of 0.5 s is over" in message
    assert "\n" not in message


def test_a_bad_tf_config_is_one_clear_error_from_the_worker():
    data = make_dataset(N_EXAMPLES, "float32")
    spec = DISTRIBUTED_VARIANTS["tensorflow"]["multi-worker-function"]
    bad = {**os.environ, "TF_CONFIG": '{"cluster": {"worker": ["localhost:1"]}}',
           LIFETIME_ENV: "120"}
    with pytest.raises(WorkerFailed, match="TF_CONFIG names 1 workers, but the cell has 2"), \
            open_trainer("tensorflow", spec, CPU["tensorflow"], data, LEARNING_RATE, 2,
                         environments=[bad, bad]):
        pass


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "TF_CONFIG is not JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "no cluster.worker list"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "worker address 'localhost' is not host:port"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
     "is not a worker of the cluster"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "index 0 to 1"),
    ('{"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 0}}',
     "names 3 workers, but the cell has 2 replicas"),
])
def test_bad_tf_configs(text, message):
    with pytest.raises(LinfitError, match=message) as raised:
        check_tf_config(text, replicas=2)
    assert "\n" not in str(raised.value)


def test_the_tf_configs_made_here_are_good():
    for index in range(2):
        config = check_tf_config(tf_config([1234, 1235], index), 2)
        assert config["task"] == {"type": "worker", "index": index}
        assert config["cluster"]["worker"] == ["localhost:1234", "localhost:1235"]


def test_a_port_in_use_is_refused_before_any_worker_starts():
    data = make_dataset(N_EXAMPLES, "float32")
    spec = DISTRIBUTED_VARIANTS["tensorflow"]["multi-worker-function"]
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LinfitError, match=f"port {port} on localhost is in use"), \
                open_trainer("tensorflow", spec, CPU["tensorflow"], data, LEARNING_RATE, 2,
                             ports=[port, free_ports(1)[0]]):
            pass


# --- the harness: the option, the matrix, the ids ---------------------------------------

def _options(**values: str):
    from linfit.harness import resolve_options

    return resolve_options({f"linfit_{name}": value for name, value in values.items()}, {},
                           Path("/project"), Path("/elsewhere"))


def test_replicas_come_from_the_flag_or_the_environment():
    from linfit.harness import resolve_options

    assert _options().replicas == (1,)
    assert _options(replicas="2,1,2").replicas == (1, 2)
    assert resolve_options({}, {"LINFIT_REPLICAS": "2"}, Path("/p"), Path("/p")).replicas == (2,)
    with pytest.raises(LinfitError, match="--linfit-replicas/LINFIT_REPLICAS: '0' is not a "
                                          "replica count"):
        _options(replicas="1,0")


def test_the_matrix_adds_distributed_cells_at_each_replica_count(tf_backend):
    from linfit.harness import build_matrix, cell_id

    plain = build_matrix(_options(backends="tensorflow", devices="CPU:0", sizes="1000",
                                  variants="function"), free_memory_bytes=lambda: None)
    assert [entry.cell.variant for entry in plain] == ["function"]
    matrix = build_matrix(_options(backends="tensorflow", devices="CPU:0", sizes="1000,1001",
                                   variants="eager,mirrored-function,multi-worker-eager",
                                   replicas="1,2"), free_memory_bytes=lambda: None)
    cells = [(entry.cell.n_examples, entry.cell.variant, entry.cell.replicas,
              entry.cell.convention, bool(entry.skip_reason)) for entry in matrix]
    assert cells == [(n, variant, replicas, convention, n == 1001 and replicas == 2)
                     for n in (1000, 1001)
                     for variant, replicas, convention in (
                         ("eager", 1, ""), ("mirrored-function", 1, "closure"),
                         ("mirrored-function", 2, "closure"), ("multi-worker-eager", 1, ""),
                         ("multi-worker-eager", 2, ""))]
    assert "does not split into 2 equal shares" in matrix[-1].skip_reason
    assert cell_id(matrix[2].cell) == (
        "tensorflow-mirrored-function-CPU:0-n=1000-float32-k=1-r=2-closure")


def test_more_replicas_than_cores_is_one_clear_error(tf_backend):
    from linfit.harness import build_matrix

    cores = os.cpu_count() or 1
    with pytest.raises(LinfitError, match=f"{cores + 1} replicas, but this machine has "
                                          f"{cores} CPU cores"):
        build_matrix(_options(backends="tensorflow", devices="CPU:0", sizes="1000",
                              replicas=f"1,{cores + 1}"))
