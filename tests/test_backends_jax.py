"""What only the JAX backend has: a CPU split in two by its device-count option. The contract
every backend keeps (float64 leaving JAX's global x64 switch as it was included) is tested in
tests/test_backend_contract.py."""

import pytest
from backend_helpers import train_on_a_second_cpu

from linfit.backends import VARIANTS_BY_BACKEND

pytest.importorskip("jax", reason="JAX is not installed")

# JAX makes N CPU devices when asked before its first use; where() names an array's device.
SPLIT_CPU = """
import jax
jax.config.update("jax_num_cpu_devices", 2)

def where(array):
    return f"CPU:{jax.devices('cpu').index(next(iter(array.devices())))}"
"""


@pytest.mark.second_cpu("jax", SPLIT_CPU, "where(trainer._x)", "where(trainer._w)")
def test_second_cpu_device_is_a_real_device(request):
    """Multi-device paths without a GPU: two CPU devices, and every variant on CPU:1."""
    placed = train_on_a_second_cpu(*request.node.get_closest_marker("second_cpu").args)
    # The result, the data and W: all on CPU:1, for every variant.
    assert [line.split()[1] for line in placed] == list(VARIANTS_BY_BACKEND["jax"])
    assert all(line.endswith("CPU:1 CPU:1 CPU:1") for line in placed), placed
