"""The contract every backend keeps, tested on every installed backend and every variant its
registry lists: the same answer on every device as its CPU eager run, as TensorFlow's and as
least squares; the tutorial's first steps; one trace per compiled trainer, whatever the calls
and learning rates; results on the device asked for; divergence, unknown devices and bad
arguments caught with a message that names them; every dtype; the floor probes.

What only one backend has (TensorFlow's soft placement inside a session, TorchDynamo's code
cache, how TensorFlow and JAX split a CPU in two) stays in tests/test_backends_<backend>.py.

Cases come from the backends' registries, so a new variant is tested here without a line
added. A backend whose framework is absent gives one skipped case per test, with the reason;
a test that needs a GPU skips, with the reason, where there is none.
"""

import dataclasses
import itertools
import math
import re

import pytest
from backend_helpers import (
    LEARNING_RATE,
    LOOP_STEPS_PER_CALL,
    N_EXAMPLES,
    REFERENCE_BACKEND,
    backend_cases,
    backend_or_skip,
    devices_for,
    expected_traces,
    global_settings,
    gpu_ids,
    numpy_descent,
    steps_per_call,
    variant_cases,
)

from linfit._errors import DeviceError, DivergenceError, LinfitError
from linfit.backends import VARIANTS_BY_BACKEND, installed_backends
from linfit.convergence import CONVERGENCE_STEPS, convergence_problems
from linfit.data import INITIAL_B, INITIAL_W, TRUE_B, TRUE_W, make_dataset
from linfit.fit import fit, train

OTHER_DTYPES = ("float64", "float16", "bfloat16")

# (backend, variant, dtype) -> why it is not run (a skip with that reason): what
# would take a second or more per dtype on a 2-core CPU. The benchmark (--linfit-dtypes)
# still checks every one of its cells' W and b.
_TORCH_COMPILE = "torch.compile takes 1 to 2.5 s per trainer and dtype on a CPU"
_JAX_EAGER = "JAX compiles each eager op once per dtype: 1 to 2 s per half-precision dtype"
COSTLY_IN_OTHER_DTYPES = {
    ("torch", "compile", "float64"): _TORCH_COMPILE,
    ("torch", "compile", "float16"): _TORCH_COMPILE,
    ("torch", "compile", "bfloat16"): _TORCH_COMPILE,
    ("torch", "compile-loop", "float64"): _TORCH_COMPILE,
    ("torch", "compile-loop", "float16"): _TORCH_COMPILE,
    ("torch", "compile-loop", "bfloat16"): _TORCH_COMPILE,
    ("jax", "eager", "float16"): _JAX_EAGER,
    ("jax", "eager", "bfloat16"): _JAX_EAGER,
}

# Learning rate at which the step diverges from W=5, b=0 within 200 steps.
DIVERGING_LEARNING_RATE = 5.0


def _on_cpu(_, variant):
    return "CPU" in variant.device_kinds


@pytest.fixture
def backend(backend_name):
    return backend_or_skip(backend_name)


def _converged(trainer, reference, where):
    """Train ``trainer`` from where it is for CONVERGENCE_STEPS, then compare its W and b with
    ``reference`` (rtol 1e-5) and least squares (1e-3). train() checks after every call that
    the result is on the device asked for."""
    train(trainer, CONVERGENCE_STEPS)
    final_w, final_b = trainer.weights()
    data = trainer.data
    assert convergence_problems(final_w, final_b, reference.final_w, reference.final_b,
                                data.w_ols, data.b_ols, "float32") == [], where


@pytest.mark.parametrize(("backend_name", "variant"), variant_cases())
def test_every_device_matches_cpu_eager_and_least_squares(backend, variant, trainers,
                                                          cpu_eager):
    reference = cpu_eager(backend.name)
    for device in devices_for(backend, variant):
        trainer = trainers(backend, variant, device.id)
        # Called at another learning rate first: reset() and set_learning_rate() must give
        # back a trainer that trains as a fresh one, without a new trace.
        trainer.set_learning_rate(0.05)
        trainer.call()
        trainer.reset()
        trainer.set_learning_rate(LEARNING_RATE)
        with backend.session():
            _converged(trainer, reference, f"{variant} on {device.id}")
        assert trainer.traces == expected_traces(backend.variants[variant])


@pytest.mark.parametrize(
    ("backend_name", "variant"),
    variant_cases(lambda name, variant: name != REFERENCE_BACKEND and _on_cpu(name, variant)))
def test_cpu_variants_match_the_reference_backends_cpu_eager(backend, variant, trainers,
                                                             cpu_eager):
    """Every backend trains on the same bytes, so it must find TensorFlow's W and b."""
    reference = cpu_eager(REFERENCE_BACKEND)
    with backend.session():
        _converged(trainers(backend, variant), reference, variant)


@pytest.mark.parametrize(("backend_name", "variant"), variant_cases(_on_cpu))
def test_first_ten_steps_have_the_tutorial_shape(backend, variant):
    # One step per call, a loop variant too: ten records, one per step.
    result = fit(backend, variant, "CPU:0", make_dataset(N_EXAMPLES), 10, LEARNING_RATE)
    history = result.history
    assert (history[0].w, history[0].b) == (INITIAL_W, INITIAL_B)
    assert len(history) == 10
    ws = [r.w for r in history] + [result.final_w]
    bs = [r.b for r in history] + [result.final_b]
    losses = [r.loss for r in history]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert all(TRUE_W < later < earlier for earlier, later in itertools.pairwise(ws))
    assert all(earlier < later < TRUE_B for earlier, later in itertools.pairwise(bs))


@pytest.mark.parametrize(("backend_name", "variant"),
                         variant_cases(lambda name, variant: variant.compiled))
def test_compiled_variants_trace_once_and_learning_rate_does_not_retrace(backend, variant,
                                                                         trainers):
    for device in devices_for(backend, variant):
        trainer = trainers(backend, variant, device.id)
        for _ in range(20):
            trainer.call()
        assert trainer.traces == 1, device.id
        for learning_rate in (0.05, 0.2, 0.01):
            trainer.set_learning_rate(learning_rate)
            trainer.call()
        trainer.reset()
        trainer.call()
        assert trainer.traces == 1, device.id


@pytest.mark.parametrize(("backend_name", "variant"),
                         variant_cases(lambda name, variant: not variant.compiled))
def test_eager_never_traces(backend, variant, trainers):
    trainer = trainers(backend, variant)
    trainer.call()
    assert trainer.traces == 0


@pytest.mark.parametrize(
    ("backend_name", "variant"),
    variant_cases(lambda name, variant: variant.compiled and not variant.loop
                  and _on_cpu(name, variant)))
def test_each_trainer_counts_its_own_traces(backend, variant, trainers):
    first = trainers(backend, variant)
    first.call()
    # The same data: with a cache shared between trainers the second would not trace. (With
    # another size, tests/test_backends_torch.py makes TorchDynamo refuse a shared cache.)
    second = backend.make_trainer(variant, "CPU:0", make_dataset(N_EXAMPLES), LEARNING_RATE,
                                  steps_per_call(backend, variant))
    second.call()
    second.call()
    first.call()
    assert (first.traces, second.traces) == (1, 1)


@pytest.mark.parametrize(("backend_name", "variant"),
                         variant_cases(lambda name, variant: not variant.loop))
def test_learning_rate_change_takes_effect(backend, variant, trainers):
    for device in devices_for(backend, variant):
        trainer = trainers(backend, variant, device.id)
        trainer.set_learning_rate(0.01)
        trainer.call()
        slow_w, _ = trainer.weights()
        trainer.reset()
        trainer.set_learning_rate(0.2)
        trainer.call()
        fast_w, _ = trainer.weights()
        # One step moves W by the learning rate times the same gradient.
        assert INITIAL_W - fast_w == pytest.approx(20 * (INITIAL_W - slow_w), rel=1e-4), \
            device.id
        assert trainer.traces == expected_traces(backend.variants[variant])


@pytest.mark.parametrize(("backend_name", "variant"),
                         variant_cases(lambda name, variant: variant.loop))
def test_loop_call_reports_the_loss_at_its_start(backend, variant, trainers):
    # Every loop variant has a one-step twin: "xla-loop" and "xla", "jit-loop" and "jit".
    single_variant = variant.removesuffix("-loop")
    assert single_variant in backend.variants
    single = trainers(backend, single_variant)
    loop = trainers(backend, variant)
    single.call()
    loop.call()
    assert loop.last_loss() == pytest.approx(single.last_loss(), rel=1e-6)
    for _ in range(LOOP_STEPS_PER_CALL - 1):
        single.call()
    assert loop.weights() == pytest.approx(single.weights(), rel=1e-6)


@pytest.mark.parametrize(("backend_name", "variant"), variant_cases(_on_cpu))
def test_divergence_names_backend_variant_device_and_step(backend, variant, trainers):
    """A loop variant diverges inside one of its calls, and is still caught after it."""
    trainer = trainers(backend, variant)
    trainer.set_learning_rate(DIVERGING_LEARNING_RATE)
    pattern = rf"{backend.name} {re.escape(variant)} on CPU:0 diverged at step \d+"
    with backend.session(), pytest.raises(DivergenceError, match=pattern):
        train(trainer, 200)
    assert trainer.traces == expected_traces(backend.variants[variant])


def _other_dtype_cases():
    """(backend name, variant, dtype) for every CPU variant in every other dtype."""
    cases = []
    for case, dtype in itertools.product(variant_cases(_on_cpu), OTHER_DTYPES):
        costly = COSTLY_IN_OTHER_DTYPES.get((*case.values, dtype))
        marks = [*case.marks, *([pytest.mark.skip(reason=costly)] if costly else [])]
        cases.append(pytest.param(*case.values, dtype, id=f"{case.id}-{dtype}", marks=marks))
    return cases


@pytest.mark.parametrize(("backend_name", "variant", "dtype"), _other_dtype_cases())
def test_other_dtypes_match_numpy_and_the_reference_backend(backend, variant, dtype,
                                                            cpu_eager):
    data = make_dataset(N_EXAMPLES, dtype)
    before = global_settings(backend.name)
    # The eager run is the backend's CPU eager reference in this dtype: made once.
    result = (cpu_eager(backend.name, dtype) if variant == "eager" else
              fit(backend, variant, "CPU:0", data, CONVERGENCE_STEPS, LEARNING_RATE,
                  steps_per_call(backend, variant)))
    # A dtype may need a framework-wide switch (JAX's x64): the run holds it for itself.
    assert global_settings(backend.name) == before
    # The dtype's tolerances: in float64 (rtol 1e-9), float32 arithmetic would be ~1e-7 away
    # from NumPy's float64 descent, so this also tells that the step ran in 64 bits.
    expected_w, expected_b = numpy_descent(data, CONVERGENCE_STEPS, LEARNING_RATE)
    assert convergence_problems(result.final_w, result.final_b, expected_w, expected_b,
                                data.w_ols, data.b_ols, dtype) == []
    # And the reference backend's CPU eager run in the same dtype, where it is installed (the
    # lent GPU machines have no TensorFlow: there, NumPy is the reference).
    if REFERENCE_BACKEND in installed_backends():
        reference = cpu_eager(REFERENCE_BACKEND, dtype)
        assert convergence_problems(result.final_w, result.final_b, reference.final_w,
                                    reference.final_b, data.w_ols, data.b_ols, dtype) == []


@pytest.mark.parametrize(("backend_name", "variant"), variant_cases())
def test_result_is_on_the_device_asked_for(backend, variant, trainers):
    for device in devices_for(backend, variant):
        trainer = trainers(backend, variant, device.id)
        with backend.session():
            trainer.call()
        assert trainer.check_placement() == device.id


@pytest.mark.parametrize(("backend_name", "variant"), variant_cases(_on_cpu))
def test_placement_mismatch_names_both_devices(backend, variant, trainers, monkeypatch):
    trainer = trainers(backend, variant)
    trainer.call()
    assert trainer.check_placement() == "CPU:0"
    monkeypatch.setattr(trainer, "device", dataclasses.replace(
        trainer.device, id="GPU:0", kind="GPU", name="a GPU"))
    with pytest.raises(DeviceError, match="asked for GPU:0 but the result is on CPU:0"):
        trainer.check_placement()


@pytest.mark.parametrize(("backend_name", "variant"),
                         variant_cases(lambda name, variant: not _on_cpu(name, variant)))
def test_gpu_only_variant_is_refused_on_the_cpu(backend, variant):
    with pytest.raises(LinfitError,
                       match=f"{backend.name} {variant} runs on GPU devices only, not on CPU:0"):
        backend.make_trainer(variant, "CPU:0", make_dataset(N_EXAMPLES), LEARNING_RATE)


@pytest.mark.parametrize("backend_name", backend_cases())
def test_cases_come_from_the_registry_the_backend_runs(backend):
    assert dict(backend.variants) == dict(VARIANTS_BY_BACKEND[backend.name])


@pytest.mark.parametrize("backend_name", backend_cases())
def test_devices_are_numbered_cpus_then_gpus_with_readable_names(backend):
    devices = backend.devices()
    assert devices[0].id == "CPU:0" and devices[0].kind == "CPU"
    assert devices[0].name and devices[0].name != "CPU:0"
    cpus = sum(d.kind == "CPU" for d in devices)
    assert [d.id for d in devices] == ([f"CPU:{i}" for i in range(cpus)]
                                       + [f"GPU:{i}" for i in range(len(devices) - cpus)])
    assert all(d.backend == backend.name and d.name and d.name != d.id for d in devices)
    assert backend.device("cpu:0") == backend.device("/device:CPU:0") == devices[0]


@pytest.mark.parametrize("backend_name", backend_cases())
def test_unknown_device_lists_the_devices(backend):
    with pytest.raises(DeviceError,
                       match=rf"{backend.name} has no device 'GPU:7'; devices: CPU:0"):
        backend.make_trainer(next(iter(backend.variants)), "GPU:7", make_dataset(N_EXAMPLES),
                             LEARNING_RATE)


def _first(backend, loop):
    return next(name for name, variant in backend.variants.items() if variant.loop == loop)


BAD_TRAINER_ARGUMENTS = {
    # case -> (arguments for a backend, the message it must give)
    "unknown-variant": lambda backend: (
        {"variant": "fast"}, re.escape(f"valid: {', '.join(backend.variants)}")),
    "zero-learning-rate": lambda backend: ({"learning_rate": 0.0}, "learning rate"),
    "nan-learning-rate": lambda backend: ({"learning_rate": math.nan}, "learning rate"),
    "steps-per-call-of-a-single-step": lambda backend: (
        {"steps_per_call": 10}, "not a loop variant"),
    "no-steps-per-call-in-a-loop": lambda backend: (
        {"variant": _first(backend, loop=True), "steps_per_call": 0}, "integer >= 1"),
}


@pytest.mark.parametrize("case", BAD_TRAINER_ARGUMENTS)
@pytest.mark.parametrize("backend_name", backend_cases())
def test_bad_trainer_arguments(backend, case):
    kwargs, message = BAD_TRAINER_ARGUMENTS[case](backend)
    arguments = {"variant": _first(backend, loop=False), "device": "CPU:0",
                 "data": make_dataset(N_EXAMPLES), "learning_rate": LEARNING_RATE} | kwargs
    with pytest.raises(LinfitError, match=message):
        backend.make_trainer(**arguments)


@pytest.mark.parametrize("backend_name", backend_cases())
def test_floor_probes_run_on_the_cpu(backend):
    device = backend.device("CPU:0")
    for probe in (backend.read_probe(device, 1000), backend.copy_probe(device, 1000),
                  backend.dispatch_probe(device)):
        # Twice: JAX's copy probe donates its target, so a second call must use the new one.
        assert probe() is None
        assert probe() is None


@pytest.mark.parametrize("backend_name", backend_cases())
def test_gpu_floor_probes_run(backend):
    for gpu in gpu_ids(backend):
        device = backend.device(gpu)
        for probe in (backend.read_probe(device, 10**6), backend.copy_probe(device, 10**6),
                      backend.dispatch_probe(device)):
            assert probe() is None
