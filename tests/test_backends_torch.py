"""The PyTorch backend: eager, compile, compile-loop (and cuda-graph on a GPU) give
TensorFlow's answer, compile once, and stay on the device asked for.

torch.compile takes seconds per trainer on a CPU, so the compiled trainers are built once
per module and every test starts them again from W=5, b=0.
"""

import pytest
from backend_helpers import LOOP_STEPS_PER_CALL, gpu_ids, numpy_descent, steps_per_call

from linfit._errors import DeviceError, DivergenceError, LinfitError
from linfit.backends import get_backend
from linfit.convergence import CONVERGENCE_STEPS, TOLERANCES, convergence_problems
from linfit.data import INITIAL_W, make_dataset
from linfit.fit import fit, train

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

N = 1000
LR = 0.1
# A loop call of 10 steps: several calls per fit, so "loss at the start of a call" matters.
CPU_VARIANTS = ("eager", "compile", "compile-loop")


@pytest.fixture(scope="module")
def backend():
    return get_backend("torch")


@pytest.fixture(scope="module")
def tf_reference(tf_backend):
    """TensorFlow's CPU eager run: the reference every backend's variants must match."""
    return fit(tf_backend, "eager", "CPU:0", make_dataset(N), CONVERGENCE_STEPS, LR)


@pytest.fixture(scope="module")
def trainers(backend):
    """One trainer per (variant, device), built on first use; handed out reset, at LR."""
    built = {}

    def get(variant, device="CPU:0"):
        if (variant, device) not in built:
            built[variant, device] = backend.make_trainer(
                variant, device, make_dataset(N), LR, steps_per_call(backend, variant))
        trainer = built[variant, device]
        trainer.reset()
        trainer.set_learning_rate(LR)
        return trainer

    return get





@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_variant_converges_to_least_squares(trainers, variant):
    trainer = trainers(variant)
    train(trainer, CONVERGENCE_STEPS)
    final_w, final_b = trainer.weights()
    _, atol = TOLERANCES["float32"]
    assert abs(final_w - trainer.data.w_ols) <= atol
    assert abs(final_b - trainer.data.b_ols) <= atol


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_variant_matches_tensorflow_cpu_eager(trainers, tf_reference, variant):
    trainer = trainers(variant)
    train(trainer, CONVERGENCE_STEPS)
    final_w, final_b = trainer.weights()
    data = trainer.data
    assert convergence_problems(final_w, final_b, tf_reference.final_w, tf_reference.final_b,
                                data.w_ols, data.b_ols, "float32") == []


@pytest.mark.parametrize("variant", ["compile", "compile-loop"])
def test_compiled_variants_compile_once_and_learning_rate_does_not_recompile(trainers,
                                                                              variant):
    trainer = trainers(variant)
    for _ in range(20):
        trainer.call()
    assert trainer.traces == 1
    for learning_rate in (0.05, 0.2, 0.01):
        trainer.set_learning_rate(learning_rate)
        trainer.call()
    trainer.reset()
    trainer.call()
    assert trainer.traces == 1


def test_eager_never_traces(trainers):
    trainer = trainers("eager")
    trainer.call()
    assert trainer.traces == 0


def test_each_trainer_has_its_own_compile_cache(backend, trainers):
    first = trainers("compile")
    first.call()
    # TorchDynamo caches compiled graphs per code object and refuses (fullgraph) to compile
    # one more than recompile_limit times: with a cache shared between trainers, a second
    # trainer of another size would be refused here.
    with torch._dynamo.config.patch(recompile_limit=1):
        second = backend.make_trainer("compile", "CPU:0", make_dataset(N // 2), LR)
        second.call()
        second.call()
        first.call()
    assert (first.traces, second.traces) == (1, 1)


def test_learning_rate_change_takes_effect(trainers):
    trainer = trainers("compile")
    trainer.set_learning_rate(0.01)
    trainer.call()
    slow_w, _ = trainer.weights()
    trainer.reset()
    trainer.set_learning_rate(0.2)
    trainer.call()
    fast_w, _ = trainer.weights()
    assert INITIAL_W - fast_w == pytest.approx(20 * (INITIAL_W - slow_w), rel=1e-4)


def test_loop_call_reports_the_loss_at_its_start(trainers):
    single = trainers("compile")
    loop = trainers("compile-loop")
    single.call()
    loop.call()
    assert loop.last_loss() == pytest.approx(single.last_loss(), rel=1e-6)
    for _ in range(LOOP_STEPS_PER_CALL - 1):
        single.call()
    assert loop.weights() == pytest.approx(single.weights(), rel=1e-6)


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_divergence_is_caught(trainers, variant):
    trainer = trainers(variant)
    trainer.set_learning_rate(5.0)
    with pytest.raises(DivergenceError, match=rf"torch {variant} on CPU:0 diverged at step \d+"):
        train(trainer, 200)
    assert trainer.traces == (0 if variant == "eager" else 1)


def test_float64_matches_numpy(backend):
    data = make_dataset(N, "float64")
    expected_w, expected_b = numpy_descent(data, CONVERGENCE_STEPS, LR)
    rtol, _ = TOLERANCES["float64"]
    result = fit(backend, "eager", "CPU:0", data, CONVERGENCE_STEPS, LR)
    # float32 arithmetic would be ~1e-7 away: this tolerance tells them apart.
    assert result.final_w == pytest.approx(expected_w, rel=rtol)
    assert result.final_b == pytest.approx(expected_b, rel=rtol)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_converges(backend, dtype):
    """bfloat16 arrives as an ml_dtypes array, which torch cannot read directly."""
    data = make_dataset(N, dtype)
    expected_w, expected_b = numpy_descent(data, CONVERGENCE_STEPS, LR)
    result = fit(backend, "eager", "CPU:0", data, CONVERGENCE_STEPS, LR)
    assert convergence_problems(result.final_w, result.final_b, expected_w, expected_b,
                                data.w_ols, data.b_ols, dtype) == []


def test_cuda_graph_is_refused_on_the_cpu(backend):
    with pytest.raises(LinfitError, match="torch cuda-graph runs on GPU devices only"):
        backend.make_trainer("cuda-graph", "CPU:0", make_dataset(N), LR)


def test_devices_list_cpu_first_with_a_readable_name(backend):
    devices = backend.devices()
    assert devices[0].id == "CPU:0" and devices[0].kind == "CPU"
    assert devices[0].name and devices[0].name != "CPU:0"
    assert [d.id for d in devices[1:]] == [f"GPU:{i}" for i in range(len(devices) - 1)]


def test_unknown_device_lists_the_devices(backend):
    with pytest.raises(DeviceError, match=r"no device 'GPU:7'; devices: CPU:0"):
        backend.make_trainer("eager", "GPU:7", make_dataset(N), LR)


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_result_is_on_the_cpu(trainers, variant):
    trainer = trainers(variant)
    trainer.call()
    assert trainer.check_placement() == "CPU:0"


def test_floor_probes_run_on_the_cpu(backend):
    device = backend.device("CPU:0")
    for probe in (backend.read_probe(device, 1000), backend.copy_probe(device, 1000),
                  backend.dispatch_probe(device)):
        assert probe() is None
        assert probe() is None


@pytest.mark.parametrize("variant", [*CPU_VARIANTS, "cuda-graph"])
def test_gpu_variants_match_cpu_and_stay_on_the_gpu(backend, trainers, variant):
    gpus = gpu_ids(backend)
    reference = trainers("eager")
    train(reference, CONVERGENCE_STEPS)
    reference_w, reference_b = reference.weights()
    data = reference.data
    for gpu in gpus:
        trainer = trainers(variant, gpu)
        for _ in range(20):
            trainer.call()
        assert trainer.traces == (0 if variant == "eager" else 1)
        trainer.set_learning_rate(0.05)
        trainer.call()
        trainer.reset()
        trainer.set_learning_rate(LR)
        # train() checks after every call that the result is on the device asked for.
        train(trainer, CONVERGENCE_STEPS)
        final_w, final_b = trainer.weights()
        assert convergence_problems(final_w, final_b, reference_w, reference_b,
                                    data.w_ols, data.b_ols, "float32") == [], gpu
        assert trainer.traces == (0 if variant == "eager" else 1)


def test_cuda_graph_learning_rate_change_takes_effect(trainers, backend):
    gpu = gpu_ids(backend)[0]
    trainer = trainers("cuda-graph", gpu)
    trainer.set_learning_rate(0.01)
    trainer.call()
    slow_w, _ = trainer.weights()
    trainer.reset()
    trainer.set_learning_rate(0.2)
    trainer.call()
    fast_w, _ = trainer.weights()
    assert INITIAL_W - fast_w == pytest.approx(20 * (INITIAL_W - slow_w), rel=1e-4)
    assert trainer.traces == 1


def test_gpu_floor_probes_run(backend):
    for gpu in gpu_ids(backend):
        device = backend.device(gpu)
        for probe in (backend.read_probe(device, 10**6), backend.copy_probe(device, 10**6),
                      backend.dispatch_probe(device)):
            assert probe() is None
