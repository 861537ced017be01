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

__all__ = ["JAX_VARIANTS", "TENSORFLOW_VARIANTS", "TORCH_VARIANTS", "VARIANTS_BY_BACKEND"]

TENSORFLOW_VARIANTS = variant_registry(
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

# backend name -> its variants, in the order of linfit.backends.BACKENDS.
VARIANTS_BY_BACKEND: Mapping[str, Mapping[str, Variant]] = {
    "tensorflow": TENSORFLOW_VARIANTS,
    "jax": JAX_VARIANTS,
    "torch": TORCH_VARIANTS,
}
