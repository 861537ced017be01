"""Every backend's variant registry, importable without any framework.

The registries are data: a name, what kind of call it is, a line of description. They live
here rather than beside each backend's step because the backend modules import their
framework (seconds, and absent where it is not installed), while ``linfit fit --help``,
the plot colours and the harness's option checks need the names of every variant of every
backend, installed or not. Each backend module takes its registry from here; a new
variant is an entry here and its code path in the backend.
"""

from __future__ import annotations

from collections.abc import Mapping

from linfit.backends.base import Variant, variant_registry

__all__ = ["DEFAULT_TENSORFLOW_CONVENTION", "JAX_VARIANTS", "KERAS_VARIANTS",
           "TENSORFLOW_CONVENTIONS", "TENSORFLOW_STEP_VARIANTS", "TENSORFLOW_VARIANTS",
           "TORCH_VARIANTS", "VARIANTS_BY_BACKEND", "conventions_for"]

# The hand-written step (linfit.backends.tensorflow.train_step).
TENSORFLOW_STEP_VARIANTS = variant_registry(
    Variant("eager", compiled=False, xla=False, loop=False,
            description="the step run op by op, eagerly"),
    Variant("function", compiled=True, xla=False, loop=False,
            description="the step wrapped in tf.function"),
    Variant("xla", compiled=True, xla=True, loop=False,
            description="tf.function(jit_compile=True)"),
    Variant("function-loop", compiled=True, xla=False, loop=True,
            description="steps_per_call steps in one tf.function, a tf.range loop"),
    Variant("xla-loop", compiled=True, xla=True, loop=True,
            description="steps_per_call steps in one XLA-compiled call"),
)

# The tutorial's model as a Keras 3 model trained by model.fit (linfit.backends.keras): one
# fit call runs steps_per_call full-batch steps; '-spe' runs them with steps_per_execution =
# steps_per_call (one compiled call for all of them), the others with 1.
KERAS_VARIANTS = variant_registry(
    Variant("keras-eager", compiled=False, xla=False, loop=True,
            description="Keras model.fit, run_eagerly=True"),
    Variant("keras-eager-spe", compiled=False, xla=False, loop=True,
            description="Keras model.fit, run_eagerly=True, steps_per_execution=k"),
    Variant("keras-function", compiled=True, xla=False, loop=True,
            description="Keras model.fit, jit_compile=False"),
    Variant("keras-function-spe", compiled=True, xla=False, loop=True,
            description="Keras model.fit, jit_compile=False, steps_per_execution=k"),
    Variant("keras-xla", compiled=True, xla=True, loop=True,
            description="Keras model.fit, jit_compile=True"),
    Variant("keras-xla-spe", compiled=True, xla=True, loop=True,
            description="Keras model.fit, jit_compile=True, steps_per_execution=k"),
)
TENSORFLOW_VARIANTS = {**TENSORFLOW_STEP_VARIANTS, **KERAS_VARIANTS}

# How a compiled TensorFlow variant's tf.function is called (issue 12). Every one wraps the
# same step (linfit.backends.tensorflow.train_step or train_loop); they differ only in what
# the call binds. name -> one line for --help and the README.
TENSORFLOW_CONVENTIONS: Mapping[str, str] = {
    "args": "tf.function(step)(W, b, x, y, lr) under a tf.device scope",
    "captured": "W and b captured, as the tutorial's Model holds them; x, y, lr as arguments",
    "concrete": "a ConcreteFunction of the captured form, called with x, y, lr",
    "closure": "a ConcreteFunction with everything captured (W, b, x, y and lr, a "
               "variable), called with no argument",
}
# The convention a compiled TensorFlow variant runs with unless one is asked for: the fastest
# a user can write. Measured with docs/overhead.py on the 2-core VM at n=1e3 (docs/overhead.md):
# per call, closure < concrete < captured < args for function and xla alike, and within noise
# of each other at n=1e6 and in the loop variants, where the call is a small share of the time.
# Full-batch training on fixed data, which is what the tutorial does, can capture it all.
DEFAULT_TENSORFLOW_CONVENTION = "closure"

JAX_VARIANTS = variant_registry(
    Variant("eager", compiled=False, xla=False, loop=False,
            description="the step run op by op, without jax.jit"),
    Variant("jit", compiled=True, xla=True, loop=False,
            description="the step wrapped in jax.jit"),
    Variant("jit-loop", compiled=True, xla=True, loop=True,
            description="steps_per_call steps in one jax.jit call, a lax.fori_loop"),
)

TORCH_VARIANTS = variant_registry(
    Variant("eager", compiled=False, xla=False, loop=False,
            description="the step run op by op, eagerly"),
    Variant("compile", compiled=True, xla=False, loop=False,
            description="the step wrapped in torch.compile (Inductor)"),
    Variant("compile-loop", compiled=True, xla=False, loop=True,
            description="steps_per_call steps in one torch.compile call, a while_loop"),
    Variant("cuda-graph", compiled=True, xla=False, loop=False,
            description="the eager step captured once as a CUDA graph and replayed",
            device_kinds=("GPU",)),
)



def conventions_for(backend: str, variant: Variant) -> tuple[str, ...]:
    """The calling conventions a variant can run with; ``('',)`` where none applies (every
    variant that is not a compiled TensorFlow one).

    Args:
        backend: the backend's name.
        variant: one of its variants.

    Returns:
        The conventions, the default first.
    """
    if backend != "tensorflow" or not variant.compiled or variant.name in KERAS_VARIANTS:
        return ("",)
    others = [name for name in TENSORFLOW_CONVENTIONS if name != DEFAULT_TENSORFLOW_CONVENTION]
    return (DEFAULT_TENSORFLOW_CONVENTION, *others)


# backend name -> its variants, in the order of linfit.backends.BACKENDS.
VARIANTS_BY_BACKEND: Mapping[str, Mapping[str, Variant]] = {
    "tensorflow": TENSORFLOW_VARIANTS,
    "jax": JAX_VARIANTS,
    "torch": TORCH_VARIANTS,
}
