"""The TensorFlow backend: every variant, every visible device, one answer."""

import itertools
import math
import subprocess
import sys
import textwrap

import pytest
from backend_helpers import steps_per_call

from linfit._errors import DeviceError, DivergenceError, LinfitError
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import INITIAL_B, INITIAL_W, TRUE_B, TRUE_W, make_dataset
from linfit.fit import fit

N = 1000
LR = 0.1


def _reference(backend, dtype="float32"):
    return fit(backend, "eager", "CPU:0", make_dataset(N, dtype), CONVERGENCE_STEPS, LR)


def _devices(backend):
    return [d.id for d in backend.devices()]



def test_every_variant_on_every_device_matches_cpu_eager(tf_backend):
    reference = _reference(tf_backend)
    data = make_dataset(N)
    for device in _devices(tf_backend):
        for variant in tf_backend.variants:
            result = fit(tf_backend, variant, device, data, CONVERGENCE_STEPS, LR,
                         steps_per_call(tf_backend, variant))
            where = f"{variant} on {device}"
            assert result.final_w == pytest.approx(reference.final_w, rel=1e-5), where
            assert result.final_b == pytest.approx(reference.final_b, rel=1e-5), where
            assert abs(result.final_w - data.w_ols) < 1e-3, where
            assert abs(result.final_b - data.b_ols) < 1e-3, where


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_other_dtypes_converge(tf_backend, dtype):
    from linfit.convergence import convergence_problems

    reference = _reference(tf_backend, dtype)
    data = make_dataset(N, dtype)
    for variant in ("xla", "function-loop"):
        result = fit(tf_backend, variant, "CPU:0", data, CONVERGENCE_STEPS, LR,
                     steps_per_call(tf_backend, variant))
        assert convergence_problems(result.final_w, result.final_b, reference.final_w,
                                    reference.final_b, data.w_ols, data.b_ols, dtype) == []


@pytest.mark.parametrize("variant", ["eager", "function", "xla", "function-loop", "xla-loop"])
def test_first_ten_steps_have_the_tutorial_shape(tf_backend, variant):
    result = fit(tf_backend, variant, "CPU:0", make_dataset(N), 10, LR)
    history = result.history
    assert (history[0].w, history[0].b) == (INITIAL_W, INITIAL_B)
    assert len(history) == 10
    ws = [r.w for r in history] + [result.final_w]
    bs = [r.b for r in history] + [result.final_b]
    losses = [r.loss for r in history]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert all(TRUE_W < later < earlier for earlier, later in itertools.pairwise(ws))
    assert all(earlier < later < TRUE_B for earlier, later in itertools.pairwise(bs))


@pytest.mark.parametrize("variant", ["function", "xla", "function-loop", "xla-loop"])
def test_compiled_variants_trace_once_and_learning_rate_does_not_retrace(tf_backend, variant):
    trainer = tf_backend.make_trainer(variant, "CPU:0", make_dataset(N), LR,
                                      steps_per_call(tf_backend, variant))
    for _ in range(20):
        trainer.call()
    assert trainer.traces == 1
    for learning_rate in (0.05, 0.2, 0.01):
        trainer.set_learning_rate(learning_rate)
        trainer.call()
    trainer.reset()
    trainer.call()
    assert trainer.traces == 1


def test_eager_never_traces(tf_backend):
    trainer = tf_backend.make_trainer("eager", "CPU:0", make_dataset(N), LR)
    trainer.call()
    assert trainer.traces == 0


def test_learning_rate_change_takes_effect(tf_backend):
    data = make_dataset(N)
    slow = tf_backend.make_trainer("xla", "CPU:0", data, 0.01)
    fast = tf_backend.make_trainer("xla", "CPU:0", data, 0.01)
    fast.set_learning_rate(0.2)
    slow.call()
    fast.call()
    slow_w, _ = slow.weights()
    fast_w, _ = fast.weights()
    assert INITIAL_W - fast_w == pytest.approx(20 * (INITIAL_W - slow_w), rel=1e-4)


def test_loop_call_reports_the_loss_at_its_start(tf_backend):
    data = make_dataset(N)
    single = tf_backend.make_trainer("xla", "CPU:0", data, LR)
    loop = tf_backend.make_trainer("xla-loop", "CPU:0", data, LR, steps_per_call=10)
    single.call()
    loop.call()
    assert loop.last_loss() == pytest.approx(single.last_loss(), rel=1e-6)
    for _ in range(9):
        single.call()
    assert loop.weights() == pytest.approx(single.weights(), rel=1e-6)


def test_divergence_names_variant_device_and_step(tf_backend):
    with pytest.raises(DivergenceError, match=r"tensorflow xla on CPU:0 diverged at step \d+"):
        fit(tf_backend, "xla", "CPU:0", make_dataset(N), 200, 5.0)


def test_divergence_inside_a_loop_call_is_caught(tf_backend):
    with pytest.raises(DivergenceError, match="xla-loop"):
        fit(tf_backend, "xla-loop", "CPU:0", make_dataset(N), 200, 5.0, steps_per_call=100)


def test_unknown_device_lists_the_devices(tf_backend):
    with pytest.raises(DeviceError, match=r"no device 'GPU:7'; devices: CPU:0"):
        tf_backend.make_trainer("xla", "GPU:7", make_dataset(N), LR)


def test_device_names_are_readable(tf_backend):
    cpu = tf_backend.device("cpu:0")
    assert cpu.id == "CPU:0" and cpu.kind == "CPU"
    assert cpu.name and cpu.name != "CPU:0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "fast"}, "valid: eager, function, xla"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"learning_rate": math.nan}, "learning rate"),
        ({"steps_per_call": 10}, "not a loop variant"),
        ({"variant": "xla-loop", "steps_per_call": 0}, "integer >= 1"),
    ],
)
def test_bad_trainer_arguments(tf_backend, kwargs, message):
    arguments = {"variant": "xla", "device": "CPU:0", "data": make_dataset(N),
                 "learning_rate": LR} | kwargs
    with pytest.raises(LinfitError, match=message):
        tf_backend.make_trainer(**arguments)


def test_placement_mismatch_names_both_devices(tf_backend):
    trainer = tf_backend.make_trainer("xla", "CPU:0", make_dataset(N), LR)
    trainer.call()
    assert trainer.check_placement() == "CPU:0"
    trainer.device = trainer.device.__class__("tensorflow", "GPU:0", "GPU", "a GPU")
    with pytest.raises(DeviceError, match="asked for GPU:0 but the result is on CPU:0"):
        trainer.check_placement()


def test_soft_placement_is_off_inside_a_session_and_restored(tf_backend):
    import tensorflow as tf

    before = tf.config.get_soft_device_placement()
    with tf_backend.session():
        assert tf.config.get_soft_device_placement() is False
    assert tf.config.get_soft_device_placement() == before


def test_gpu_variants_match_cpu(tf_backend):
    gpus = [d for d in tf_backend.devices() if d.kind == "GPU"]
    if not gpus:
        pytest.skip("no GPU visible to TensorFlow")
    reference = _reference(tf_backend)
    for device in gpus:
        result = fit(tf_backend, "xla", device.id, make_dataset(N), CONVERGENCE_STEPS, LR)
        assert result.final_w == pytest.approx(reference.final_w, rel=1e-5)


LOGICAL_DEVICES_SCRIPT = textwrap.dedent("""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

    from linfit.backends import get_backend
    from linfit.data import make_dataset
    from linfit.fit import fit

    backend = get_backend("tensorflow")
    print("devices", [d.id for d in backend.devices()])
    data = make_dataset(1000)
    reference = fit(backend, "eager", "CPU:0", data, 100, 0.1)
    for variant in backend.variants:
        k = 10 if backend.variants[variant].loop else 1
        with backend.session():
            trainer = backend.make_trainer(variant, "CPU:1", data, 0.1, k)
            trainer.call()
            print("placed", variant, trainer.check_placement(), trainer._x.device[-5:],
                  trainer._w.device[-5:])
        result = fit(backend, variant, "CPU:1", data, 100, 0.1, k)
        assert abs(result.final_w / reference.final_w - 1) < 1e-5, variant
        assert abs(result.final_b / reference.final_b - 1) < 1e-5, variant
    print("ok")
""")


def test_second_logical_cpu_is_a_real_device():
    """Multi-device paths without a GPU: split the CPU in two and train on CPU:1."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    done = subprocess.run([sys.executable, "-c", LOGICAL_DEVICES_SCRIPT], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "devices ['CPU:0', 'CPU:1']" in lines
    placed = [line for line in lines if line.startswith("placed")]
    assert len(placed) == 5
    assert all(line.endswith("CPU:1 CPU:1 CPU:1") for line in placed), placed
    assert lines[-1] == "ok"
