"""The Trainer's step on a torch device (a CUDA GPU): forward pass, backward pass and blekota's
optimizer update of one window, captured in one CUDA graph.

Optional: needs `pip install torch`; the Trainer imports this module only for device="cuda"
(see blekota.device). The network is blekota.torch.GRUModel (blekota's cell, canonical weights),
the update blekota.optim's rules written again for torch tensors, operation for operation, so a
float64 step equals the compiled core's to rounding and the optimizer's state converts both ways.

The host stays the keeper of record: the Trainer's Model and Optimizer (and its weight average,
blekota.averaging, which the device updates after each step as the host would). The device copies
their weights and moments before its first step, and while it trains it holds newer ones; download()
brings them back (the Trainer calls it before it validates, samples or saves), and the next step
copies the host's again, so whatever the host did in between is what the device continues from.
Each step sends the window and the carried state (layers, B, H) to the device and brings back the
loss and the new state.

On a CUDA device each window shape (T, B) gets one CUDA graph, made as PyTorch's whole-network
recipe makes one (torch.cuda.graphs): static input, target and state tensors, a few eager warm-up
steps on a side stream, then forward, backward and the in-place update captured together; a step
fills the static tensors and replays. The warm-up's updates are undone by copying the host's
weights and moments (brought up to date first) back. Elsewhere (torch's CPU device, used by the tests) the same body runs
eagerly on the same static tensors.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch.nn import functional

from .averaging import WeightAverage
from .errors import BlekotaWarning, ConfigError
from .layout import canonical_to_flat, flat_to_canonical
from .model import Model
from .mulaw import LEVELS
from .optim import Optimizer
from .torch import NUMPY_DTYPES, GRUModel

WARMUP = 3  # eager steps on a side stream before a capture, as PyTorch's recipe has it
RULES = ("rmsprop", "adagrad", "adam")


class DeviceOptimizer:
    """blekota.optim's update (clip each gradient element to [-clip, clip], then RMSprop, Adagrad
    or Adam) on torch tensors, in place, in the order of the NumPy operations.

    host: the Trainer's Optimizer, which keeps the name, hyperparameters, lr and step count t;
    parameters: the canonical parameters (GRUModel.canonical_parameters()); average: the
    Trainer's WeightAverage (None: none), whose sum is updated after each update. The moments and
    the average's sum live here in the canonical layout; load() and store() convert them from and
    to the host's flat arrays.
    What changes from step to step (clip, lr, Adam's corrected step size and eps) sits in 0-dim
    tensors that prepare() sets before each step, so a captured graph reads the current values.
    """

    def __init__(self, host: Optimizer, parameters: dict[str, torch.Tensor], layers: int, hidden: int,
                 average: WeightAverage | None = None):
        if host.name not in RULES:
            raise ConfigError(f"the {host.name!r} optimizer has no rule on a torch device (those are {', '.join(RULES)})")
        self.host, self.layers, self.hidden, self.average = host, layers, hidden, average
        self.keys, self.params = list(parameters), list(parameters.values())
        self.slots = {slot: [torch.zeros_like(param) for param in self.params] for slot in host.slots}
        self.sums = [torch.zeros_like(param) for param in self.params] if average else []
        like = self.params[0]
        self.clip, self.lr, self.step_size, self.eps = (like.new_zeros(()) for _ in range(4))
        self.rounding = np.dtype(NUMPY_DTYPES[like.dtype]).type

    def _host_arrays(self) -> list[tuple[np.ndarray, list[torch.Tensor]]]:
        """Each flat host array (the optimizer's moments, the average's sum) with its tensors."""
        pairs = [(getattr(self.host, slot), tensors) for slot, tensors in self.slots.items()]
        return pairs + ([(self.average.total_sum, self.sums)] if self.average else [])

    def load(self) -> None:
        """Copy the host's moments and average (flat, the core's layout) into the device's."""
        for flat, tensors in self._host_arrays():
            state = flat_to_canonical(flat, self.layers, self.hidden)
            for key, tensor in zip(self.keys, tensors):
                tensor.copy_(torch.from_numpy(state[key]))

    def store(self) -> None:
        """Copy the device's moments and average into the host's flat arrays."""
        for flat, tensors in self._host_arrays():
            state = {key: tensor.cpu().numpy() for key, tensor in zip(self.keys, tensors)}
            canonical_to_flat(state, self.layers, self.hidden, flat)

    def prepare(self) -> None:
        """Count the step on the host (as Optimizer.step and WeightAverage.update do) and set this
        step's scalars."""
        host = self.host
        host.t += 1
        if self.average:
            self.average.count()
        values = {self.clip: host.clip}
        if host.name == "adam":
            values[self.step_size], values[self.eps] = host.corrected()
        else:
            values[self.lr] = host.lr
        with np.errstate(over="ignore"):  # rounded as NumPy rounds them: too large for float32 is inf
            for tensor, value in values.items():
                tensor.fill_(float(self.rounding(value)))

    def update(self) -> torch.Tensor:
        """Clip the gradients (param.grad) and update the parameters in place; returns a bool
        tensor: whether every updated weight is finite. Runs on the device, host-free."""
        host, finite = self.host, []
        for index, param in enumerate(self.params):
            grad = param.grad
            torch.clamp(grad, -self.clip, self.clip, out=grad)
            if host.name == "adam":
                m, v = self.slots["m"][index], self.slots["v"][index]
                m.mul_(host.beta1).add_(grad * (1.0 - host.beta1))
                v.mul_(host.beta2).add_(grad * grad * (1.0 - host.beta2))
                param.sub_(m / (v.sqrt() + self.eps) * self.step_size)
            else:
                m = self.slots["m"][index]
                if host.name == "rmsprop":
                    m.mul_(host.decay).add_(grad * grad * (1.0 - host.decay))
                else:
                    m.add_(grad * grad)
                param.sub_(grad / (m + host.eps).sqrt() * self.lr)
            if self.average:
                self.sums[index].mul_(self.average.decay).add_(param * (1.0 - self.average.decay))
            finite.append(torch.isfinite(param).all())
        return torch.stack(finite).all()


class _Window:
    """The static tensors of one window shape (T, B), which a captured graph reads and writes,
    and the function that runs the step on them (a graph's replay, or the eager body)."""

    def __init__(self, T: int, B: int, layers: int, hidden: int, dtype: torch.dtype, device: torch.device):
        self.inputs = torch.zeros((T, B), dtype=torch.long, device=device)
        self.targets = torch.zeros((T, B), dtype=torch.long, device=device)
        self.h0 = torch.zeros((layers, B, hidden), dtype=dtype, device=device)
        self.h_last = torch.zeros_like(self.h0)
        self.result = torch.zeros(2, dtype=dtype, device=device)  # the loss, and 1 when every weight is finite
        self.replay: Callable[[], None] = lambda: None


def capture(body: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """body (forward, backward, update on static tensors) captured in a CUDA graph after WARMUP
    eager runs on a side stream, as PyTorch's whole-network recipe does; returns the replay.
    The warm-up runs update the weights and moments: the caller restores them."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


class TorchStep:
    """Training steps of `model` with `optimizer` (the Trainer's; see the module docstring) on a
    torch device: "cuda", "cuda:N", or "cpu" (torch's CPU, eagerly: how the tests check it).

    graphs: capture each window shape in a CUDA graph (default: on CUDA devices); a capture
    that fails is reported as a warning and that shape runs eagerly. average: the Trainer's
    WeightAverage, updated on the device after each step (None: no averaging).
    """

    def __init__(self, model: Model, optimizer: Optimizer, device: str | torch.device = "cuda",
                 graphs: bool | None = None, average: WeightAverage | None = None):
        self.model = model
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.graphs = self.device.type == "cuda" if graphs is None else bool(graphs)
        with self._on_device():
            dtype = torch.float64 if model.dtype == np.float64 else torch.float32
            self.net = GRUModel.from_blekota(model, dtype=dtype, device=self.device)
            parameters = self.net.canonical_parameters()
            self.optimizer = DeviceOptimizer(optimizer, parameters, model.layers, model.hidden, average)
        self.windows: dict[tuple[int, int], _Window] = {}
        self.ahead = False  # whether the device holds newer weights and moments than the host

    def __str__(self) -> str:
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        return f"torch's {self.device} device"

    def _on_device(self):
        return torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    def upload(self) -> None:
        """Copy the host's weights (model.params) and optimizer moments to the device."""
        self.net.load_canonical_state_dict(self.model.state_dict())
        self.optimizer.load()

    def download(self) -> None:
        """Copy the device's newer weights and moments into model.params and the host optimizer's
        arrays (what validation, sampling and saving read); nothing when the host's are current."""
        if not self.ahead:
            return
        canonical_to_flat(self.net.canonical_state_dict(), self.model.layers, self.model.hidden, self.model.params)
        self.optimizer.store()
        self.ahead = False

    def run(self, x: np.ndarray, targets: np.ndarray | None, h0: np.ndarray) -> tuple[float, np.ndarray, bool]:
        """One training step on window x, (T+1, B) uint8 levels (rows 0..T-1 inputs, 1..T targets
        unless targets (T, B) gives them), from the state h0 (layers, B, H): loss, gradients and
        the optimizer's update of the weights, on the device. Returns (loss in nats per predicted
        sample, the last state (layers, B, H) as a NumPy array, whether every weight is finite)."""
        T, B = x.shape[0] - 1, x.shape[1]
        try:
            with self._on_device():
                if not self.ahead:
                    self.upload()
                window = self.windows.get((T, B)) or self._window(T, B)
                window.inputs.copy_(torch.from_numpy(x[:-1]))
                window.targets.copy_(torch.from_numpy(x[1:] if targets is None else targets))
                window.h0.copy_(torch.from_numpy(h0))
                self.optimizer.prepare()
                window.replay()
                self.ahead = True
                loss, finite = window.result.tolist()
                return loss, window.h_last.cpu().numpy(), finite == 1
        except torch.cuda.OutOfMemoryError:
            raise ConfigError(
                f"{self}: out of memory for windows of {T} steps x {B} streams of a {self.model.layers}x"
                f"{self.model.hidden} model; use a smaller batch_size, seq_length or hidden"
            ) from None

    def _window(self, T: int, B: int) -> _Window:
        """The static tensors of shape (T, B) and their step: a CUDA graph when graphs are on."""
        window = _Window(T, B, self.model.layers, self.model.hidden, self.net.Wy.dtype, self.device)
        window.replay = body = partial(self._forward_backward_update, window)
        if self.graphs:
            self.download()  # the host keeps the weights and moments, which the warm-up changes
            try:
                window.replay = capture(body, self.device)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                warnings.warn(f"{self}: the training step could not be captured in a CUDA graph ({reason}); "
                              "it runs eagerly, slower", BlekotaWarning, stacklevel=2)
            self.upload()  # undo the warm-up's updates
        self.windows[(T, B)] = window
        return window

    def _forward_backward_update(self, window: _Window) -> None:
        """The step a graph captures: loss and gradients of the window's static tensors, the
        update, and the outputs written into the window (result, h_last)."""
        for param in self.optimizer.params:
            param.grad = None
        logits, h_last = self.net.unchecked_forward(window.inputs, window.h0)
        loss = functional.cross_entropy(logits.reshape(-1, LEVELS), window.targets.reshape(-1))
        loss.backward()
        with torch.no_grad():
            finite = self.optimizer.update()
            window.h_last.copy_(h_last)
            window.result[0] = loss
            window.result[1] = finite
