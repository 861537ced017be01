"""The PyTorch backend: the tutorial's step eagerly, under torch.compile, and as a CUDA graph.

torch.compile (TorchDynamo + Inductor) is PyTorch's compiled path: the comparison point for
tf.function and XLA. A CUDA graph replays the captured step's kernels with one launch.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch._higher_order_ops.while_loop import while_loop
from torch.func import grad_and_value

from linfit.backends.base import Backend, Device, Trainer, Variant
from linfit.backends.variants import TORCH_VARIANTS
from linfit.data import INITIAL_B, INITIAL_W, Dataset
from linfit.environment import cpu_model, gpu_driver_version

__all__ = ["BACKEND", "TorchBackend", "train_loop", "train_step"]

# Eager steps run on a side stream before a CUDA graph capture, as the CUDA-graph section
# of the PyTorch CUDA semantics notes asks (lazy initialisation, autograd's workspaces).
CUDA_GRAPH_WARMUP_STEPS = 3


def _mse(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.square(x * w + b - y))


def train_step(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               learning_rate: torch.Tensor) -> torch.Tensor:
    """One step of the tutorial: MSE loss of x*W + b, autodiff gradients, gradient descent.

    ``torch.func.grad_and_value`` rather than ``backward()``, as it runs the same eagerly,
    under torch.compile (no graph break) and inside a CUDA graph capture. W and b are
    updated in place (``sub_``), like TensorFlow's ``assign_sub``.

    Returns the loss at W and b before the update.
    """
    (grad_w, grad_b), loss = grad_and_value(_mse, argnums=(0, 1))(w, b, x, y)
    w.sub_(learning_rate * grad_w)
    b.sub_(learning_rate * grad_b)
    return loss


def train_loop(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               learning_rate: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """``steps`` calls of :func:`train_step` in one graph, as a ``while_loop``.

    ``while_loop`` is the loop torch.compile keeps as a loop (a Python ``for`` is unrolled,
    which makes compile time grow with ``steps``). Its body may not mutate what it is given,
    so each turn steps fresh copies of W and b. Returns the loss of the first step, so a call
    reports the loss at the W and b it started from, as a single step does.
    """
    loss = train_step(w, b, x, y, learning_rate)

    def one_more(done: torch.Tensor, w_now: torch.Tensor,
                 b_now: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w_next, b_next = w_now.clone(), b_now.clone()
        train_step(w_next, b_next, x, y, learning_rate)
        return done + 1, w_next, b_next

    _, w_end, b_end = while_loop(lambda done, *_: done < steps, one_more,
                                 (torch.ones_like(steps), w.clone(), b.clone()))
    w.copy_(w_end)
    b.copy_(b_end)
    return loss


# The registry is data, kept where it can be read without torch: linfit.backends.variants.
VARIANTS = TORCH_VARIANTS


def _torch_device(device: Device) -> torch.device:
    return torch.device("cpu" if device.kind == "CPU" else f"cuda:{device.id.split(':')[1]}")


def _device_id(device: torch.device) -> str:
    """A torch.device -> its linfit id: ``cpu`` -> ``CPU:0``, ``cuda:i`` -> ``GPU:i``."""
    kind = "GPU" if device.type == "cuda" else device.type.upper()
    return f"{kind}:{device.index or 0}"


def _placed(values: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor of ``dtype`` on ``device``.

    torch cannot read ml_dtypes' bfloat16: it goes through float32, which holds every
    bfloat16 and float16 value exactly. torch.tensor copies, so the read-only data set
    is never shared with a tensor that could write to it.
    """
    if values.dtype.itemsize < 4:
        values = values.astype(np.float32)
    return torch.tensor(values).to(device=device, dtype=dtype)


def _fresh_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a code object of its own.

    TorchDynamo keeps its compiled graphs in a cache on the code object, shared by every
    function made from it, and refuses to compile more than ``recompile_limit`` (8) entries
    (with fullgraph; without, it would run eagerly). Trainers compiling the same step for
    other sizes, dtypes or devices would share that cache: the ninth cell of a benchmark
    matrix would fail, and a trainer could reuse another's graph and count no compile of
    its own. A copied code object gives each trainer its own cache, freed with the trainer.
    """
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__,
                              fn.__defaults__, fn.__closure__)


class _TorchTrainer(Trainer):
    def __init__(self, variant: Variant, device: Device, data: Dataset, learning_rate: float,
                 steps_per_call: int) -> None:
        super().__init__("torch", variant, device, data, steps_per_call)
        self._torch_device = _torch_device(device)
        self._cuda = self._torch_device.type == "cuda"
        dtype = getattr(torch, data.dtype)
        self._x = _placed(data.x, dtype, self._torch_device)
        self._y = _placed(data.y, dtype, self._torch_device)
        # Every tensor the step reads is made once and changed in place from then on, so a
        # compiled graph's guards hold and a CUDA graph's captured addresses stay valid.
        self._w = torch.full((), INITIAL_W, dtype=dtype, device=self._torch_device)
        self._b = torch.full((), INITIAL_B, dtype=dtype, device=self._torch_device)
        self._lr = torch.full((), learning_rate, dtype=dtype, device=self._torch_device)
        self._steps = torch.tensor(steps_per_call, device=self._torch_device)
        self._traces = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._loss: torch.Tensor | None = None
        if variant.name == "compile":
            self._step = self._compiled(train_step)
        elif variant.name == "compile-loop":
            self._step = self._compiled(train_loop)
        else:
            self._step = train_step

    def _compiled(self, fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        # fullgraph: a graph break would split the step and run part of it eagerly; better
        # an error. dynamic=False: the shapes never change within a trainer.
        return torch.compile(_fresh_function(fn), backend=self._count_and_compile,
                             fullgraph=True, dynamic=False)

    def _count_and_compile(self, graph: torch.fx.GraphModule,
                           example_inputs: list[torch.Tensor]) -> Callable[..., Any]:
        """A torch.compile backend: Inductor, as torch.compile's default, counting compiles."""
        from torch._inductor.compile_fx import compile_fx

        self._traces += 1
        return compile_fx(graph, example_inputs)

    def _capture(self) -> None:
        """Capture one eager step as a CUDA graph, after warm-up steps on a side stream.

        The warm-up steps move W and b, so they are put back before the graph runs.
        """
        start_w, start_b = self._w.clone(), self._b.clone()
        side = torch.cuda.Stream(self._torch_device)
        side.wait_stream(torch.cuda.current_stream(self._torch_device))
        with torch.cuda.stream(side):
            for _ in range(CUDA_GRAPH_WARMUP_STEPS):
                train_step(self._w, self._b, self._x, self._y, self._lr)
        torch.cuda.current_stream(self._torch_device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self._torch_device), torch.cuda.graph(graph):
            # Capture records the kernels without running them; the loss tensor it returns
            # is the graph's output buffer, refilled by every replay.
            self._loss = train_step(self._w, self._b, self._x, self._y, self._lr)
        self._w.copy_(start_w)
        self._b.copy_(start_b)
        self._graph = graph
        self._traces += 1

    def call(self) -> None:
        if self.variant.name == "cuda-graph":
            if self._graph is None:
                self._capture()
            self._graph.replay()
        elif self.variant.loop:
            self._loss = self._step(self._w, self._b, self._x, self._y, self._lr, self._steps)
        else:
            self._loss = self._step(self._w, self._b, self._x, self._y, self._lr)
        if self._cuda:
            # CUDA kernels run asynchronously: wait for them, so the clock counts them. The
            # CPU runs each op to its end before returning.
            torch.cuda.synchronize(self._torch_device)

    def reset(self) -> None:
        self._w.fill_(INITIAL_W)
        self._b.fill_(INITIAL_B)

    def set_learning_rate(self, learning_rate: float) -> None:
        self._lr.fill_(learning_rate)

    def weights(self) -> tuple[float, float]:
        return self._w.item(), self._b.item()

    def last_loss(self) -> float:
        if self._loss is None:
            raise RuntimeError("last_loss() before the first call()")
        return self._loss.item()

    @property
    def traces(self) -> int:
        return self._traces

    def result_device(self) -> str:
        if self._loss is None:
            raise RuntimeError("result_device() before the first call()")
        return _device_id(self._loss.device)


def _synchronised(device: Device, fn: Callable[[], object]) -> Callable[[], None]:
    torch_device = _torch_device(device)

    def call() -> None:
        fn()
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)

    return call


class TorchBackend(Backend):
    name = "torch"
    variants = VARIANTS

    @property
    def version(self) -> str:
        return torch.__version__

    def build_info(self) -> str:
        parts = []
        if torch.version.cuda:
            parts.append(f"cuda_version={torch.version.cuda}")
        if torch.backends.cudnn.is_available():
            parts.append(f"cudnn_version={torch.backends.cudnn.version()}")
        return " ".join(parts)

    def devices(self) -> list[Device]:
        devices = [Device(self.name, "CPU:0", "CPU", cpu_model())]
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            details = " ".join(filter(None, [self.build_info(),
                                             f"compute_capability={major}.{minor}",
                                             f"driver={gpu_driver_version()}"
                                             if gpu_driver_version() else ""]))
            devices.append(Device(self.name, f"GPU:{index}", "GPU",
                                  torch.cuda.get_device_name(index), details))
        return devices

    def thread_settings(self) -> dict[str, int]:
        return {"intra_op_threads": torch.get_num_threads(),
                "inter_op_threads": torch.get_num_interop_threads()}

    def read_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        # Eager reduction and copy: each is one kernel already, which compiling would only
        # wrap in guards (and compile again for every size).
        data = torch.rand(n_elements, device=_torch_device(device))
        return _synchronised(device, lambda: torch.sum(data))

    def copy_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        source = torch.rand(n_elements, device=_torch_device(device))
        target = torch.empty_like(source)
        return _synchronised(device, lambda: target.copy_(source))

    def dispatch_probe(self, device: Device) -> Callable[[], None]:
        scalar = torch.ones((), device=_torch_device(device))
        plus_one = torch.compile(lambda value: value + 1.0, fullgraph=True, dynamic=False)
        return _synchronised(device, lambda: plus_one(scalar))

    def _make_trainer(self, variant: Variant, device: Device, data: Dataset,
                      learning_rate: float, steps_per_call: int) -> Trainer:
        return _TorchTrainer(variant, device, data, learning_rate, steps_per_call)


BACKEND = TorchBackend()
