"""What only the PyTorch backend has: TorchDynamo's compile cache, kept apart per trainer,
and one CPU device, which it cannot split. The contract every backend keeps (the GPU-only
cuda-graph variant included) is tested in tests/test_backend_contract.py."""

import pytest
from backend_helpers import LEARNING_RATE, N_EXAMPLES

from linfit.backends import get_backend
from linfit.data import make_dataset

torch = pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.fixture(scope="module")
def backend():
    return get_backend("torch")


def test_each_trainer_has_its_own_compile_cache(backend, trainers):
    first = trainers(backend, "compile")
    first.call()
    # TorchDynamo caches compiled graphs per code object and refuses (fullgraph) to compile
    # one more than recompile_limit times: with a cache shared between trainers, a second
    # trainer of another size would be refused here.
    with torch._dynamo.config.patch(recompile_limit=1):
        second = backend.make_trainer("compile", "CPU:0", make_dataset(N_EXAMPLES // 2),
                                      LEARNING_RATE)
        second.call()
        second.call()
        first.call()
    assert (first.traces, second.traces) == (1, 1)


def test_one_cpu_then_the_gpus(backend):
    devices = backend.devices()
    assert devices[0].id == "CPU:0" and devices[0].kind == "CPU"
    assert [d.id for d in devices[1:]] == [f"GPU:{i}" for i in range(len(devices) - 1)]
