"""The model: a stacked GRU over mu-law levels, its weights, and the calls into the compiled core."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from . import checks, frames, memory, modelchecks
from .drawing import SMOOTH, WAKE, _smooth, _truncation, _wake, smoothed, wake_steps
from .emphasis import Deemphasis, check_preemphasis, emphasize
from .errors import ConfigError
from .layout import Layout, canonical_shapes, canonical_to_flat, flat_to_canonical, frame_of
from .mulaw import LEVELS, SILENCE, quantize, real_array, unquantize
from .parallel import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from numpy.typing import ArrayLike

    from .stream import Stream

try:
    from . import _gru, sampler  # sampler imports the compiled sampling loop
except ImportError as error:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        f"blekota's compiled core is missing from {Path(__file__).parent} ({error}). Build it with "
        "'pip install -e .', or run from outside the source folder after 'pip install .'."
    ) from error

SAMPLE_CHUNK = 4096  # steps sample() draws at a time: a Ctrl+C waits for no more than these
SAMPLING_CHOICES = ("int8", "bf16_sampling")  # the keys of model.info that say how it is sampled


_blas_controller: ThreadpoolController | None = None


def single_threaded_blas() -> AbstractContextManager[object]:
    """A context in which BLAS runs on the calling thread only.

    The compiled kernels split their work over OpenMP threads and call BLAS from each of them;
    a multi-threaded BLAS underneath would fight them for the same cores.
    """
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def default_threads() -> int:
    """OMP_NUM_THREADS when set, else the number of CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return usable_cpus()


class _Workspace:
    """Scratch arrays for one (T, B): allocated once, reused by every window of that shape."""

    def __init__(self, layers: int, T: int, B: int, hidden: int, dtype: np.dtype, backward: bool):
        H = hidden
        self.shape, self.backward = (T, B), backward
        self.hs = np.empty((layers, T + 1, B, H), dtype)
        self.acts = np.empty((layers, T, B, 3 * H), dtype)
        self.rh = np.empty((layers, T, B, H), dtype)
        self.out = np.empty((T * B, LEVELS), dtype)
        shape = (T, B) if backward else (0, 0)
        self.d_acts = np.empty(shape + (3 * H,), dtype)
        self.d_hs = np.empty(shape + (H,), dtype)
        self.dh_next = np.empty((shape[1], H), dtype)
        self.d_rh = np.empty((shape[1], H), dtype)


class Model:
    """A stacked GRU that predicts the next mu-law level of a sound.

    hidden: units per layer; layers: GRU layers; fs: sample rate in Hz that the model speaks;
    dtype: "float32" or "float64"; seed: weights initialization (None: random): every weight
    and bias uniform in [-1/sqrt(hidden), 1/sqrt(hidden)], the scale PyTorch's GRU starts from
    (the original's N(0, 0.01^2) learns slower: see benchmarks/README.md, "Time to a good model");
    threads: OpenMP threads for the kernels (None: OMP_NUM_THREADS or the CPU count, divided
    among the processes of a data-parallel Trainer on the same machine; threads_by_default says
    that it was None and model.threads was not set since); frame: samples per frame of a frame
    tier that conditions the first layer (blekota.frames; 0: none; its conditioning matrices
    start at zero, so a new model with a frame tier computes what the stack alone does);
    preemphasis: the model hears the sound through y[t] = x[t] - a * x[t-1] and what it draws is
    turned back (blekota.emphasis; 0: it hears the sound as it is).
    model.info holds what a model file carries besides weights (training files, iterations,
    hyperparameters, loss history) and how it is sampled (SAMPLING_CHOICES: int8, bf16_sampling).
    """

    def __init__(
        self,
        hidden: int = 256,
        layers: int = 3,
        fs: int = 8000,
        dtype: str = "float32",
        seed: int | None = None,
        threads: int | None = None,
        frame: int = 0,
        preemphasis: float = 0.0,
    ):
        self.hidden = checks.positive_int("hidden", hidden)
        self.preemphasis = check_preemphasis(preemphasis)
        self.frame = checks.integer("frame", frame, 0, frames.MAX_FRAME)
        self.layers = checks.positive_int("layers", layers)
        self.fs = checks.sample_rate("fs", fs)
        self.dtype = modelchecks.dtype(dtype)
        self.threads = min(default_threads(), modelchecks.MAX_THREADS) if threads is None else threads
        self.threads_by_default = threads is None
        seed = checks.seed(seed)
        memory.ensure(
            memory.model_bytes(self.layers, self.hidden, self.dtype.itemsize),
            f"a {self.layers}x{self.hidden} {self.dtype.name} model",
            "use fewer layers or a smaller hidden",
        )
        self.params = np.zeros(self._size, self.dtype)
        self._workspaces: dict[tuple[int, int], _Workspace] = {}
        self.info: dict = {}
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.hidden)
        state = {
            key: rng.uniform(-bound, bound, shape)
            for key, shape in canonical_shapes(self.layers, self.hidden, self.frame).items()
        }
        for condition in frames.CONDITIONS if self.frame else ():
            state[f"frame.{condition}"][...] = 0  # a new frame tier starts by changing nothing
        canonical_to_flat(state, self.layers, self.hidden, self.params, self.frame)

    def __repr__(self) -> str:
        frame = f", frame={self.frame}" if self.frame else ""
        frame += f", preemphasis={self.preemphasis:g}" if self.preemphasis else ""
        return (
            f"Model(hidden={self.hidden}, layers={self.layers}, fs={self.fs}, "
            f"dtype={self.dtype.name!r}{frame}, iterations={self.info.get('iterations', 0)})"
        )

    @property
    def _size(self) -> int:
        return Layout(self.layers, self.hidden).size + frames.frame_size(self.frame, self.hidden)

    @property
    def architecture(self) -> dict:
        """What a model file records to rebuild this model: hidden, layers, fs, dtype (name),
        frame when the model has a frame tier and preemphasis when it has one."""
        arch = {"hidden": self.hidden, "layers": self.layers, "fs": self.fs, "dtype": self.dtype.name}
        if self.frame:
            arch["frame"] = self.frame
        if self.preemphasis:
            arch["preemphasis"] = self.preemphasis
        return arch

    @property
    def state_rows(self) -> int:
        """Rows of the hidden state (rows, B, H): one per layer, and the frame tier's last."""
        return self.layers + (1 if self.frame else 0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the weights and self.info to a model file (atomically); see blekota.fileformat.
        Read it back with blekota.load. Raises ConfigError, writing nothing, when self.info holds
        what blekota.load would refuse (see blekota.checkpoint) or path is named as another kind of
        file (a sound such as .wav, .onnx, .pkl)."""
        from .modelfile import save  # modelfile builds models: it imports this module

        return save(path, self)

    @property
    def int8(self) -> bool:
        """Whether one stream is sampled with int8 weights (blekota.sampler); kept in model.info,
        so a saved model file remembers it."""
        return self.info.get("int8") is True

    @int8.setter
    def int8(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"int8 must be True or False, got {value!r}")
        self.info["int8"] = bool(value)

    @property
    def bf16_sampling(self) -> bool:
        """Whether dense streams are sampled with bfloat16 products (blekota.sampler: one stream
        reads half the bytes per step, several multiply faster with AVX512_BF16; about 3e-3 in
        total variation from float32, a stream's numbers the same alone or among several); kept
        in model.info, so a saved model file remembers it. blekota.Trainer turns it on in what it
        saves of a model it trains with bfloat16 products, unless model.info already has it (True
        or False)."""
        return self.info.get("bf16_sampling") is True

    @bf16_sampling.setter
    def bf16_sampling(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"bf16_sampling must be True or False, got {value!r}")
        self.info["bf16_sampling"] = bool(value)

    @property
    def threads(self) -> int:
        """OpenMP threads for the kernels."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = modelchecks.threads(value)
        self.threads_by_default = False

    @property
    def core_params(self) -> np.ndarray:
        """The stack's part of self.params (all of it without a frame tier), a view."""
        return self.params[: Layout(self.layers, self.hidden).size]

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return self.params.size

    def gradient_blocks(self) -> list[tuple[int, int]]:
        """[(start, stop), ...]: the blocks of the flat gradient (like self.params) in the order the
        backward pass finishes them: the output layer's, then each layer's from the top down, then
        the frame tier's."""
        blocks = _gru.gradient_blocks(self.layers, self.hidden)
        if self.frame:
            blocks.append((Layout(self.layers, self.hidden).size, self._size))
        return blocks

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the weights in the canonical layout (see blekota.reference)."""
        return flat_to_canonical(self.params, self.layers, self.hidden, self.frame)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Replace the weights with a canonical dict of this model's architecture (real numbers, finite
        in the model's dtype)."""
        expected = canonical_shapes(self.layers, self.hidden, self.frame)
        if not isinstance(state, dict):
            raise ConfigError(f"state must be a dict of weight arrays by name, got {type(state).__name__}")
        if set(state) != set(expected):
            raise ConfigError(f"state dict keys {sorted(state)} do not match {sorted(expected)}")
        state = {key: real_array(state[key], f"{key} must be an array of weights") for key in expected}
        for key, shape in expected.items():
            if state[key].shape != shape:
                raise ConfigError(f"{key} has shape {state[key].shape}, expected {shape}")
            if not np.isfinite(state[key]).all():
                raise ConfigError(f"{key} holds NaN or infinite weights")
            state[key] = modelchecks.in_dtype(key, state[key], self.dtype)
        canonical_to_flat(state, self.layers, self.hidden, self.params, self.frame)

    @classmethod
    def from_state_dict(
        cls, state: dict[str, np.ndarray], fs: int = 8000, dtype: str = "float32", **kwargs: int | float | None
    ) -> Model:
        """A model at fs Hz with these canonical weights; the architecture is read from the shapes,
        kwargs are Model's other arguments (seed, threads, preemphasis). Raises ConfigError when
        the shapes do not make a model."""
        if not isinstance(state, dict) or "gru0.W" not in state or "out.Wy" not in state:
            raise ConfigError("state dict needs at least gru0.W and out.Wy")
        hidden = int(np.shape(state["gru0.W"])[0])
        layers = sum(1 for key in state if key.startswith("gru") and key.endswith(".Wr"))
        frame = frame_of(state)
        if frame < 0:
            raise ConfigError(f"frame.W has shape {np.shape(state['frame.W'])}, expected (H, F + H + 1)")
        model = cls(hidden=hidden, layers=layers, fs=fs, dtype=dtype, frame=frame, **kwargs)
        model.load_state_dict(state)
        return model

    def zero_state(self, batch: int) -> np.ndarray:
        """An all-zero hidden state (state_rows, batch, hidden)."""
        return np.zeros((self.state_rows, batch, self.hidden), self.dtype)

    def _workspace_for(self, T: int, B: int, backward: bool) -> _Workspace:
        """Scratch for windows of (T, B), taken out of the cache while a window runs in it (so a
        window of the same model on another thread gets its own); _keep puts it back."""
        ws = self._workspaces.pop((T, B), None)
        if ws is None or (backward and not ws.backward):
            memory.ensure(
                memory.window_bytes(self.layers, self.hidden, T, B, self.dtype.itemsize, backward),
                f"a window of {T} steps x {B} streams for a {self.layers}x{self.hidden} model",
                "use a shorter seq_length or a smaller batch_size",
            )
            ws = _Workspace(self.layers, T, B, self.hidden, self.dtype, backward)
        return ws

    def _keep(self, ws: _Workspace) -> None:
        """Cache ws for the next window of its (T, B); the two most recent shapes stay allocated."""
        self._workspaces[ws.shape] = ws
        while len(self._workspaces) > 2:
            self._workspaces.pop(next(iter(self._workspaces)), None)

    def window(self, x: ArrayLike, h0: ArrayLike | None = None, grads: np.ndarray | None = None,
               targets: ArrayLike | None = None, ready: Callable[[int, int], None] | None = None,
               bf16: bool = False) -> tuple[float, np.ndarray]:
        """Run the compiled core over one window.

        x: (T+1, B) levels, rows 0..T-1 inputs and 1..T targets; targets: (T, B) levels to
        predict instead of x[1:] (then x's last row is unused); h0: (state_rows, B, H) or None. With
        grads (a flat array like self.params) the backward pass runs and fills it; ready, when
        given, is called as ready(start, stop) as soon as grads[start:stop] is final, block by
        block in the order of gradient_blocks() (so that a data-parallel sum can start while the
        pass goes on; see blekota.parallel). Returns (loss in mean nats per predicted sample,
        h_last (state_rows, B, H)). Scratch memory is kept for the next call (a call on another
        thread meanwhile gets its own). A frame tier's part runs in NumPy around the compiled core
        (blekota.frames). bf16: the core's matrix products with bfloat16 operands and float32 sums
        (blekota.device.check_bf16).
        """
        loss, h_last, ws = self._window(x, h0, grads, targets, ready, bf16)
        self._keep(ws)
        return loss, h_last

    def _window(self, x: ArrayLike, h0: ArrayLike | None, grads: np.ndarray | None, targets: ArrayLike | None,
                ready: Callable[[int, int], None] | None, bf16: bool) -> tuple[float, np.ndarray, _Workspace]:
        """window(), and the scratch it ran in (out: the (T * B, 256) probabilities), not cached yet."""
        x, h0 = modelchecks.window(self, x, h0)
        checks.optional_callable("ready", ready)
        bf16 = checks.flag("bf16", bf16)
        T, B = x.shape[0] - 1, x.shape[1]
        if targets is not None:
            targets = modelchecks.targets(targets, T, B)
        backward = grads is not None
        ws = self._workspace_for(T, B, backward)
        h_last = np.empty_like(h0)
        grads = np.empty(0, self.dtype) if grads is None else modelchecks.grads(self, grads)
        L, core = self.layers, Layout(self.layers, self.hidden).size
        tier = cond = None
        if self.frame:
            tier = frames.FrameTier(self.params[core:], self.frame, self.hidden)
            cond, h_last[L], steps = tier.forward(x[:-1], h0[L])
        with single_threaded_blas():
            loss = _gru.window(
                self.params[:core], grads[:core] if backward else grads, x, h0[:L], h_last[:L],
                ws.hs, ws.acts, ws.rh, ws.out, ws.d_acts, ws.d_hs, ws.dh_next, ws.d_rh, backward,
                self.threads, targets, ready, cond, self.frame, bf16,
            )
        if tier is not None and backward:
            d_cond = frames.frame_sums(ws.d_acts, self.frame)
            tier.backward(d_cond, h0[L], steps, frames.FrameTier(grads[core:], self.frame, self.hidden))
            if ready is not None:
                ready(core, self._size)
        return loss, h_last, ws

    def loss_and_grad(self, x: ArrayLike, h0: ArrayLike | None = None,
                      targets: ArrayLike | None = None) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Loss and gradients over one window, through the compiled core.

        x: (T+1, B) int levels, rows 0..T-1 inputs and 1..T targets unless targets (T, B) gives
        them; h0: (state_rows, B, H) or None (state_rows: layers, plus one with a frame tier).
        Returns (loss in mean nats per predicted sample, grads as a canonical dict, h_last).
        """
        grads = np.empty_like(self.params)
        loss, h_last = self.window(x, h0, grads, targets)
        return loss, flat_to_canonical(grads, self.layers, self.hidden, self.frame), h_last

    def probabilities(self, inputs: ArrayLike, h0: ArrayLike | None = None) -> np.ndarray:
        """Teacher-forced distributions: inputs (T, B) levels -> (T, B, 256) p of the next level."""
        inputs = modelchecks.levels("inputs", inputs, 2)
        x = np.concatenate([inputs, np.full((1, inputs.shape[1]), SILENCE, np.uint8)])
        _, _, ws = self._window(x, h0, None, None, None, False)
        probs = ws.out.reshape(*inputs.shape, LEVELS).copy()
        self._keep(ws)
        return probs

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        hint: ArrayLike | Sequence[ArrayLike] | None = None,
        seed: int | None = None,
        return_probs: bool = False,
        streams: int = 1,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        smooth: float = SMOOTH,
        wake: float = WAKE,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Generate n samples (float in [-1, 1]) by feeding each drawn level back in.

        temperature divides the logits (higher: more varied; 0: always the likeliest level).
        Then the tempered distribution is truncated and renormalized, in this order:
        top_k keeps the k likeliest levels (lower: safer, less varied; 0 or >= 256: all);
        top_p keeps the fewest likeliest levels whose probabilities sum to at least top_p
        (lower: safer, less varied; 1: all); min_p drops the levels less likely than min_p
        times the likeliest one (higher: safer, less varied; 0: none dropped). Equal
        probabilities rank by level, lowest first; the likeliest level is always kept.
        hint: a float sound, or a list of sounds (one per stream, any lengths), that primes
        generation: its samples are used instead of draws, so the output starts with the hint;
        input before sample 0 is silence. streams: S independent voices stepped together.
        seed: the draws come from numpy.random.PCG64(seed), one uniform double u per stream per
        drawn step (steps in order, streams 0..S-1 within a step); the level is the first k
        (0..255) whose running sum of the tempered, truncated probabilities exceeds u times
        their sum (blekota.reference.sampling_distribution and draw_level spell it out). The
        same seed and streams give the same sound on every run on the same machine and build,
        for any thread count; temperature 0 and hinted steps draw nothing.
        smooth: each sample is written `smooth` of the way from the drawn level's sample to the
        mean of the distribution it was drawn from (the sample the model expected; at
        temperature 0 the drawn one). The model still hears the drawn level, so the sound goes
        where it would have gone, with less of the model's uncertainty in it as hiss. 0: the
        drawn levels exactly; 1: the means. Hinted steps are the hint.
        wake: seconds of silence (levels 126..129 drawn in a row) after which the model hears
        each further silent level moved by a small random amount (-2..2 levels, from the step's
        own uniform, so no draw changes before it) until it has drawn sound for as long again in a
        row (a click does not end it): faint noise instead of the digital silence a model can fall
        into and never leave. What is written
        stays what was drawn. 0: never; temperature 0: never.
        Returns (n,) float32 for one stream, (S, n) for several; with return_probs also the
        probabilities (n, 256) or (S, n, 256) in the model's dtype, all n steps (n * S * 256
        values: ask only for short sounds): p[t] is the tempered, truncated and renormalized
        distribution sample t was drawn from (for hinted steps, the one it would have been drawn
        from; at temperature 0, the one at temperature 1, truncated). Memory apart from the
        results does not grow with n. Drawn SAMPLE_CHUNK steps at a time, so Ctrl+C stops it soon.
        """
        n = checks.non_negative_int("n", n, "a non-negative integer")
        streams = checks.positive_int("streams", streams)
        memory.ensure(  # the results and their scratch, as when they were drawn in one piece
            streams * n * (1 + 4 + self.dtype.itemsize + (LEVELS * self.dtype.itemsize if return_probs else 0)),
            f"{n} samples x {streams} streams" + (" with probabilities" if return_probs else ""),
            "generate fewer samples at a time",
        )
        pieces = self.generate(n, min(max(n, 1), SAMPLE_CHUNK), temperature, hint, seed, streams, return_probs,
                               top_k, top_p, min_p, smooth, wake)
        shape = (streams, n) if streams > 1 else (n,)
        sound = np.empty(shape, np.float32)
        probs = np.empty(shape + (LEVELS,), self.dtype) if return_probs else None
        start = 0
        for piece in pieces:  # Ctrl+C is taken between them
            part = piece[0] if return_probs else piece
            stop = start + part.shape[-1]
            sound[..., start:stop] = part
            if probs is not None:
                probs[..., start:stop, :] = piece[1]
            start = stop
        return (sound, probs) if return_probs else sound

    def generate(
        self,
        n: int,
        chunk: int = 8000,
        temperature: float = 1.0,
        hint: ArrayLike | Sequence[ArrayLike] | None = None,
        seed: int | None = None,
        streams: int = 1,
        return_probs: bool = False,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        smooth: float = SMOOTH,
        wake: float = WAKE,
    ) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """Stream a long sound: yield sample(n, ...) in chunks of `chunk` samples (the last one
        shorter), carrying the hidden state and the random generator between chunks.

        The concatenated chunks equal sample(n, temperature, hint, seed, return_probs, streams,
        top_k, top_p, min_p, smooth, wake).
        Each chunk is (c,) float32 for one stream, (S, c) for several; with return_probs a
        (sound, probabilities) pair of that chunk. Memory does not grow with n.
        """
        n = checks.non_negative_int("n", n, "a non-negative integer")
        chunk = checks.positive_int("chunk", chunk)
        streams = checks.positive_int("streams", streams)
        temperature = checks.non_negative_float("temperature", temperature)
        truncation = _truncation(top_k, top_p, min_p)
        smooth = _smooth(smooth)
        wake_after = wake_steps(_wake(wake), self.fs)
        seed = checks.seed(seed)
        return_probs = checks.flag("return_probs", return_probs)
        steps = min(n, chunk)
        memory.ensure(
            streams * steps * (1 + 4 + self.dtype.itemsize + (LEVELS * self.dtype.itemsize if return_probs else 0)),
            f"{steps} samples x {streams} streams" + (" with probabilities" if return_probs else ""),
            "generate fewer samples at a time",
        )
        modelchecks.params(self, finite=True)
        hint_levels, hint_lengths = self.hint_levels(hint, streams, n)
        return self._generate(n, chunk, float(temperature), truncation, smooth, wake_after, hint_levels,
                              hint_lengths, seed, streams, return_probs)

    def stream(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
               seed: int | None = None, hint: ArrayLike | Sequence[ArrayLike] | None = None, smooth: float = SMOOTH,
               wake: float = WAKE) -> Stream:
        """A live source of this model's sound: stream.process(n) gives the next n samples, and
        stream.set(...) changes how they are drawn from the next call on. See blekota.stream.Stream."""
        from .stream import Stream

        return Stream(self, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed, hint=hint,
                      smooth=smooth, wake=wake)

    def _generate(self, n, chunk, temperature, truncation, smooth, wake_after, hint_levels, hint_lengths, seed,
                  streams, return_probs):
        """The generator behind generate(), after validation (so errors raise at the call).

        Streams that share one hint hear it as one stream, widened to all of them where it ends
        (the same levels and probabilities, at a fraction of the cost)."""
        shared = streams > 1 and hint_lengths[0] > 0 and (hint_lengths == hint_lengths[0]).all() \
            and (hint_levels == hint_levels[0]).all()
        widen_at = int(hint_lengths[0]) if shared else 0
        packed = sampler.pack(self, streams)
        stepper = sampler.Sampler(self, 1 if shared else streams, seed, packed)
        deemphasis = Deemphasis(self.preemphasis, streams) if self.preemphasis else None
        dtype = stepper.h.dtype
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            levels = np.empty((streams, stop - start), np.uint8)
            means = np.empty((streams, stop - start), dtype)
            probs = np.empty((streams, stop - start if return_probs else 0, LEVELS), dtype)
            for lo, hi in ((start, min(stop, widen_at)), (max(start, widen_at), stop)):
                if lo >= hi:
                    continue
                if lo == widen_at and widen_at:
                    stepper = stepper.widened(self, streams)
                rows = stepper.h.shape[1]
                part = slice(lo - start, hi - start)
                hint = np.ascontiguousarray(hint_levels[:rows, lo:hi])
                lengths = np.clip(hint_lengths[:rows] - lo, 0, hint.shape[1])
                part_levels = np.empty((rows, hi - lo), np.uint8)
                part_means = np.empty((rows, hi - lo), dtype)
                part_probs = np.empty((rows, hi - lo if return_probs else 0, LEVELS), dtype)
                stepper.run(part_levels, hint, lengths, part_probs, temperature, truncation, part_means, wake_after)
                levels[:, part], means[:, part] = part_levels, part_means
                probs[:, part] = part_probs
            sound = smoothed(unquantize(levels), means, smooth)
            sound = deemphasis(sound) if deemphasis else sound
            probs = probs.astype(self.dtype, copy=False)
            if streams == 1:
                sound, probs = sound[0], probs[0]
            yield (sound, probs) if return_probs else sound

    def hint_levels(self, hint: ArrayLike | Sequence[ArrayLike] | None, streams: int,
                    n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hint sound(s) -> the levels the model hears (streams, nh) and each stream's hint
        length (streams,), cut to n.

        One sound primes every stream; a list or tuple of sounds gives one per stream (any
        lengths); a list of numbers is one sound.
        """
        if hint is None:
            return np.empty((streams, 0), np.uint8), np.zeros(streams, np.intp)
        hints = modelchecks.hints(hint, streams)
        lengths = np.array([min(h.size, n) for h in hints], np.intp)
        levels = np.zeros((streams, int(lengths.max())), np.uint8)
        for row, h in zip(levels, hints):
            row[: min(h.size, n)] = quantize(self.heard(h[:n]))
        return levels, lengths

    def heard(self, sound: np.ndarray) -> np.ndarray:
        """(n,) float sound -> the sound as the model hears it before quantizing: the sound
        itself, or its pre-emphasis (blekota.emphasis), silence before sample 0."""
        return emphasize(sound, self.preemphasis) if self.preemphasis else sound
