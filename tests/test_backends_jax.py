"""The JAX backend: eager, jit and jit-loop give TensorFlow's answer, trace once, stay put."""

import pytest
from backend_helpers import LOOP_STEPS_PER_CALL, gpu_ids, numpy_descent, steps_per_call

from linfit._errors import DeviceError, DivergenceError, LinfitError
from linfit.backends import get_backend
from linfit.convergence import CONVERGENCE_STEPS, TOLERANCES, convergence_problems
from linfit.data import INITIAL_W, make_dataset
from linfit.fit import fit

jax = pytest.importorskip("jax", reason="JAX is not installed")

N = 1000
LR = 0.1
# A loop call of 10 steps: several calls per fit, so "loss at the start of a call" matters.
VARIANTS = ("eager", "jit", "jit-loop")


@pytest.fixture(scope="module")
def backend():
    return get_backend("jax")


@pytest.fixture(scope="module")
def tf_reference(tf_backend):
    """TensorFlow's CPU eager run: the reference every backend's variants must match."""
    return fit(tf_backend, "eager", "CPU:0", make_dataset(N), CONVERGENCE_STEPS, LR)





@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_converges_to_least_squares(backend, variant):
    data = make_dataset(N)
    result = fit(backend, variant, "CPU:0", data, CONVERGENCE_STEPS, LR,
                 steps_per_call(backend, variant))
    _, atol = TOLERANCES["float32"]
    assert abs(result.final_w - data.w_ols) <= atol
    assert abs(result.final_b - data.b_ols) <= atol


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_matches_tensorflow_cpu_eager(backend, tf_reference, variant):
    data = make_dataset(N)
    result = fit(backend, variant, "CPU:0", data, CONVERGENCE_STEPS, LR,
                 steps_per_call(backend, variant))
    assert convergence_problems(result.final_w, result.final_b, tf_reference.final_w,
                                tf_reference.final_b, data.w_ols, data.b_ols, "float32") == []


@pytest.mark.parametrize("variant", ["jit", "jit-loop"])
def test_compiled_variants_trace_once_and_learning_rate_does_not_retrace(backend, variant):
    trainer = backend.make_trainer(variant, "CPU:0", make_dataset(N), LR,
                                   steps_per_call(backend, variant))
    for _ in range(20):
        trainer.call()
    assert trainer.traces == 1
    for learning_rate in (0.05, 0.2, 0.01):
        trainer.set_learning_rate(learning_rate)
        trainer.call()
    trainer.reset()
    trainer.call()
    assert trainer.traces == 1


def test_eager_never_traces(backend):
    trainer = backend.make_trainer("eager", "CPU:0", make_dataset(N), LR)
    trainer.call()
    assert trainer.traces == 0


def test_each_trainer_counts_its_own_traces(backend):
    data = make_dataset(N)
    first = backend.make_trainer("jit", "CPU:0", data, LR)
    first.call()
    second = backend.make_trainer("jit", "CPU:0", data, LR)
    second.call()
    second.call()
    assert (first.traces, second.traces) == (1, 1)


def test_learning_rate_change_takes_effect(backend):
    data = make_dataset(N)
    slow = backend.make_trainer("jit", "CPU:0", data, 0.01)
    fast = backend.make_trainer("jit", "CPU:0", data, 0.01)
    fast.set_learning_rate(0.2)
    slow.call()
    fast.call()
    slow_w, _ = slow.weights()
    fast_w, _ = fast.weights()
    assert INITIAL_W - fast_w == pytest.approx(20 * (INITIAL_W - slow_w), rel=1e-4)


def test_loop_call_reports_the_loss_at_its_start(backend):
    data = make_dataset(N)
    single = backend.make_trainer("jit", "CPU:0", data, LR)
    loop = backend.make_trainer("jit-loop", "CPU:0", data, LR, steps_per_call=10)
    single.call()
    loop.call()
    assert loop.last_loss() == pytest.approx(single.last_loss(), rel=1e-6)
    for _ in range(9):
        single.call()
    assert loop.weights() == pytest.approx(single.weights(), rel=1e-6)


def test_float64_runs_in_64_bits_and_leaves_x64_as_it_was(backend):
    data = make_dataset(N, "float64")
    expected_w, expected_b = numpy_descent(data, CONVERGENCE_STEPS, LR)
    rtol, _ = TOLERANCES["float64"]
    before = jax.config.read("jax_enable_x64")
    for variant in VARIANTS:
        result = fit(backend, variant, "CPU:0", data, CONVERGENCE_STEPS, LR,
                     steps_per_call(backend, variant))
        # float32 arithmetic would be ~1e-7 away: this tolerance tells them apart.
        assert result.final_w == pytest.approx(expected_w, rel=rtol), variant
        assert result.final_b == pytest.approx(expected_b, rel=rtol), variant
        assert jax.config.read("jax_enable_x64") == before


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_converges(backend, dtype):
    data = make_dataset(N, dtype)
    expected_w, expected_b = numpy_descent(data, CONVERGENCE_STEPS, LR)
    result = fit(backend, "jit-loop", "CPU:0", data, CONVERGENCE_STEPS, LR, LOOP_STEPS_PER_CALL)
    assert convergence_problems(result.final_w, result.final_b, expected_w, expected_b,
                                data.w_ols, data.b_ols, dtype) == []


@pytest.mark.parametrize("variant", ["eager", "jit-loop"])
def test_divergence_is_caught(backend, variant):
    with pytest.raises(DivergenceError, match=rf"jax {variant} on CPU:0 diverged at step \d+"):
        fit(backend, variant, "CPU:0", make_dataset(N), 200, 5.0,
            steps_per_call(backend, variant))


def test_devices_list_cpu_first_with_a_readable_name(backend):
    devices = backend.devices()
    assert devices[0].id == "CPU:0" and devices[0].kind == "CPU"
    assert devices[0].name and devices[0].name != "CPU:0"
    assert len({d.id for d in devices}) == len(devices)
    assert all(d.backend == "jax" for d in devices)


def test_unknown_device_lists_the_devices(backend):
    with pytest.raises(DeviceError, match=r"no device 'GPU:7'; devices: CPU:0"):
        backend.make_trainer("jit", "GPU:7", make_dataset(N), LR)


def test_unknown_variant_lists_the_valid_ones(backend):
    with pytest.raises(LinfitError, match="valid: eager, jit, jit-loop"):
        backend.make_trainer("xla", "CPU:0", make_dataset(N), LR)


@pytest.mark.parametrize("variant", VARIANTS)
def test_result_is_on_the_cpu(backend, variant):
    trainer = backend.make_trainer(variant, "CPU:0", make_dataset(N), LR,
                                   steps_per_call(backend, variant))
    trainer.call()
    assert trainer.check_placement() == "CPU:0"


def test_floor_probes_run_on_the_cpu(backend):
    device = backend.device("CPU:0")
    for probe in (backend.read_probe(device, 1000), backend.copy_probe(device, 1000),
                  backend.dispatch_probe(device)):
        # Twice: the copy probe's target is donated, so a second call must use the new one.
        assert probe() is None
        assert probe() is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_gpu_variants_match_cpu_and_stay_on_the_gpu(backend, variant):
    gpus = gpu_ids(backend)
    data = make_dataset(N)
    reference = fit(backend, "eager", "CPU:0", data, CONVERGENCE_STEPS, LR)
    for gpu in gpus:
        # fit() checks after every call that the result is on the device asked for.
        result = fit(backend, variant, gpu, data, CONVERGENCE_STEPS, LR,
                     steps_per_call(backend, variant))
        assert convergence_problems(result.final_w, result.final_b, reference.final_w,
                                    reference.final_b, data.w_ols, data.b_ols, "float32") == []
        trainer = backend.make_trainer(variant, gpu, data, LR, steps_per_call(backend, variant))
        for _ in range(20):
            trainer.call()
        assert trainer.traces == (1 if backend.variants[variant].compiled else 0)


def test_gpu_floor_probes_run(backend):
    for gpu in gpu_ids(backend):
        device = backend.device(gpu)
        for probe in (backend.read_probe(device, 10**6), backend.copy_probe(device, 10**6),
                      backend.dispatch_probe(device)):
            assert probe() is None
