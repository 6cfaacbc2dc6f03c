"""The sampling kernels' packed weights, and the choice among the kernels: dense, sparse, int8, bf16.

Dense (csrc/sample_kernel.h) runs any number of streams on any number of threads. For one
stream, a block-sparse model (blekota.sparsity) runs the sparse kernel (csrc/sparse_kernel.h) on
one thread: it reads only the kept blocks of 8 units by 4 inputs, and draws exactly the levels
the dense kernel would for the same seed. The int8 kernel runs the same blocks with int8
weights (one scale per output column) and unsigned byte activations: about a quarter of the
memory, its distributions 0.01-0.02 in total variation from the float ones on trained models
(held under 0.05 by tests/test_sparse.py). The bf16 kernel is the dense kernel with every
product's weights and inputs rounded to bfloat16 (float32 sums, as training's bf16 products), for
any number of streams: one stream reads half the bytes a step, several multiply in tiles of
streams; its distributions are about 3e-3 in total variation from the float ones on trained models
(tests/test_bf16_sampling.py); vdpbf16ps where the CPU has AVX512_BF16, float instructions
elsewhere, with the same results, and a stream's the same alone or among several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _sample, frames, sparsity
from .mulaw import SILENCE

if TYPE_CHECKING:
    from .model import Model

BLOCK_UNITS, BLOCK_INPUTS = sparsity.BLOCK_UNITS, sparsity.BLOCK_INPUTS  # 8 units by 4 inputs
GROUPS = 4  # groups of 8 output columns stepped together by the sparse kernels (BK_GROUPS)
SPARSE_BELOW = 0.5  # the share of kept blocks under which one stream runs the sparse kernel
_EMPTY_BYTES = np.empty(0, np.int8)
_EMPTY_FLOATS = np.empty(0, np.float32)
_EMPTY_INTS = np.empty(0, np.int32)


@dataclass
class Packed:
    """A model's weights packed for one generation.

    kernel: "dense", "sparse", "int8" or "bf16"; dense: _sample.pack of the weights (the sparse
    kernels read layer 0's table, the biases and the output layer from it, bf16 its table and
    biases; float32 for int8 and bf16); sparse: _sample.generate's `sparse` argument (None for
    dense and bf16); half: _sample.generate's `half` argument (bf16's panels; None for the rest).
    """

    kernel: str
    dense: np.ndarray
    sparse: tuple | None
    half: np.ndarray | None = None


def _padded(hidden: int) -> int:
    return -(-hidden // 64) * 64


def _products(params: np.ndarray, layers: int, hidden: int) -> list[np.ndarray]:
    """The step's products as padded dense matrices (K rows of [x, h], columns), in kernel order:
    per layer [r, z] (2 Hp columns) then the candidate (Hp columns); layer 0 has no x rows."""
    H, Hp, G = hidden, _padded(hidden), 3 * hidden
    out, at = [], 0
    for layer in range(layers):
        X = 256 if layer == 0 else H
        WxT = params[at : at + X * G].reshape(X, G)
        UhT = params[at + X * G : at + (X + H) * G].reshape(H, G)
        at += (X + H + 1) * G
        Kx = 0 if layer == 0 else Hp
        for gates in ((0, 1), (2,)):
            matrix = np.zeros((Kx + Hp, len(gates) * Hp), params.dtype)
            for slot, gate in enumerate(gates):
                columns = slice(slot * Hp, slot * Hp + H)
                if layer > 0:
                    matrix[:H, columns] = WxT[:, gate * H : (gate + 1) * H]
                matrix[Kx : Kx + H, columns] = UhT[:, gate * H : (gate + 1) * H]
            out.append(matrix)
    return out


def _blocks(matrix: np.ndarray) -> np.ndarray:
    """(K, C) -> (C / 8, K / 4, 4, 8): block [g, k] is rows 4k..4k+3 of columns 8g..8g+7."""
    K, C = matrix.shape
    return matrix.reshape(K // BLOCK_INPUTS, BLOCK_INPUTS, C // BLOCK_UNITS, BLOCK_UNITS).transpose(2, 0, 1, 3)


def _sets(kept: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Kept blocks (groups, row blocks) -> per set of 4 groups: the groups (4,), the row blocks
    (n, 4) of each group's kept blocks in increasing order, padded to the longest list n, and
    (n, 4) which of them are real (the padding reads row block 0 with zero weights). The sets
    take the groups in order of their kept-block count (ties by group), so that a set's lists
    are near the same length and little padding is needed."""
    counts = kept.sum(axis=1)
    order = np.argsort(counts, kind="stable")
    sets = []
    for first in range(0, kept.shape[0], GROUPS):
        groups = order[first : first + GROUPS]
        lists = [np.flatnonzero(kept[group]) for group in groups]
        n = int(counts[groups].max())
        row_blocks = np.zeros((n, GROUPS), np.intp)
        real = np.zeros((n, GROUPS), bool)
        for k, found in enumerate(lists):
            row_blocks[: len(found), k] = found
            real[: len(found), k] = True
        sets.append((groups, row_blocks, real))
    return sets


def _aligned(values: np.ndarray) -> np.ndarray:
    """A copy of a 1-D array that starts on a 64-byte boundary (a cache line), so that no 32-byte
    block the sparse kernels load straddles two lines (numpy aligns to 16 bytes only)."""
    raw = np.empty(values.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + values.nbytes].view(values.dtype)
    out[...] = values
    return out


def kernel_for(model: Model, streams: int) -> str:
    """The kernel that samples `streams` streams of a blekota.Model: int8 for one stream when
    model.int8, sparse for one stream when at most SPARSE_BELOW of the blocks are kept, bf16 for
    any number of streams when model.bf16_sampling, else dense."""
    if streams == 1 and model.int8:
        return "int8"
    if streams == 1 and sparsity.block_density(model) <= SPARSE_BELOW:
        return "sparse"
    if model.bf16_sampling:
        return "bf16"
    return "dense"


def pack(model: Model, streams: int) -> Packed:
    """Pack a blekota.Model's weights for `streams` streams, for kernel_for's kernel."""
    kernel = kernel_for(model, streams)
    params, layers, hidden = model.core_params, model.layers, model.hidden
    values = params.astype(np.float32, copy=False) if kernel in ("int8", "bf16") else params
    dense = np.empty(_sample.packed_size(layers, hidden), values.dtype)
    _sample.pack(values, layers, hidden, dense)
    if kernel == "dense":
        return Packed(kernel, dense, None)
    if kernel == "bf16":
        half = np.empty(dense.size, np.uint16)
        _sample.pack_half(dense, layers, hidden, half)
        return Packed(kernel, dense, None, half)
    index, weights, scales, offsets, bytes_ = [], [], [], [], []
    products = _products(values, layers, hidden)
    if kernel == "int8":
        Hp, WyT = _padded(hidden), values[-(hidden + 1) * 256 : -256].reshape(hidden, 256)
        products.append(np.concatenate([WyT, np.zeros((Hp - hidden, 256), values.dtype)]))
    for matrix in products:
        blocks = _blocks(matrix)
        if kernel == "int8":
            top = np.abs(matrix).max(axis=0)
            step = np.where(top > 0, top / 127, 1).astype(np.float32)
            quantized = np.clip(np.rint(matrix / step), -127, 127).astype(np.int8)
            column_offsets = (127 * quantized.sum(axis=0, dtype=np.int64)).astype(np.int32)
            column_scales = np.where(top > 0, step / 127, 0).astype(np.float32)
            quantized_blocks = _blocks(quantized)
        for groups, row_blocks, real in _sets(np.abs(blocks).sum(axis=(2, 3)) > 0):
            index += [[row_blocks.shape[0]], groups * BLOCK_UNITS, (row_blocks * BLOCK_INPUTS).ravel()]
            if kernel == "sparse":
                weights.append((blocks[groups, row_blocks] * real[..., None, None]).ravel())
            else:
                picked = quantized_blocks[groups, row_blocks] * real[..., None, None]
                bytes_.append(picked.transpose(0, 1, 3, 2).ravel())
                columns = (groups[:, None] * BLOCK_UNITS + np.arange(BLOCK_UNITS)).ravel()
                offsets.append(column_offsets[columns])
                scales.append(column_scales[columns])
    index = np.concatenate(index).astype(np.int32)
    if kernel == "sparse":
        return Packed(kernel, dense, (index, _aligned(np.concatenate(weights)), _EMPTY_BYTES, _EMPTY_FLOATS,
                                      _EMPTY_INTS))
    return Packed(kernel, dense, (index, np.empty(0, np.float32), _aligned(np.concatenate(bytes_).astype(np.int8)),
                                  np.concatenate(scales), np.concatenate(offsets)))


def bf16_path(streams: int = 1) -> str:
    """How this CPU runs the bf16 kernel's products for `streams` streams: "avx512_bf16"
    (vdpbf16ps) or "float" (float instructions, the same bits; several streams on Intel CPUs)."""
    return _sample.bf16_path(streams)


def int8_path() -> str:
    """The int8 products this CPU runs: "vnni" (AVX-512 VNNI), "avx2" or "portable"."""
    return _sample.int8_path()


class Sampler:
    """The compiled sampling loop and the state it carries, for S streams of one model.

    The weights are packed once, when it is made; each run() continues where the last one
    stopped. h (state_rows, S, H): the hidden state; previous (S,): each stream's last level (fed
    next); bit_generator: where the draws come from; tuning: what the kernel learned about using
    one thread or all for one stream (so short runs do not time both again each time); quiet (S,):
    each stream's waking state (the silent or sound levels drawn in a row: _sample.generate's wake_after). The one
    place that packs the weights and picks the kernel (dense, sparse, int8 or bf16) for a blekota.Model:
    Model.generate() and blekota.stream.Stream both run through it.

    With a frame tier (blekota.frames), the compiled loop runs a frame at a time with the
    conditioning of the frame tier's state (h's last row), which steps in NumPy between frames on
    the levels drawn during the frame (fed (S, F), of which `position` are filled; the stack may
    hear a silence dithered, see wake_after, the tier hears it as drawn).
    """

    def __init__(self, model, streams: int, seed: int | None, packed: Packed | None = None):
        self.threads = model.threads
        self.packed = packed if packed is not None else pack(model, streams)
        dtype = self.packed.dense.dtype  # float32 for int8 and bf16
        self.h = model.zero_state(streams).astype(dtype)
        self.previous = np.full(streams, SILENCE, np.uint8)
        self.quiet = np.zeros(streams, np.intp)
        self.bit_generator = np.random.PCG64(seed)
        self.tuning = _sample.new_tuning()
        self.layers, self.frame = model.layers, model.frame
        if self.frame:
            weights = model.params[model.core_params.size :].astype(dtype)
            self.tier = frames.FrameTier(weights, self.frame, model.hidden)
            self.fed = np.full((streams, self.frame), SILENCE, np.uint8)
            self.drawn = self.previous.copy()  # the last level drawn (the tier hears what was drawn)
            self.position = 0

    def widened(self, model, streams: int) -> Sampler:
        """A Sampler of `streams` streams that each go on from this one-stream Sampler's state,
        with its packed weights (pack them for `streams`) and its bit generator: how several
        streams share one hint, stepped once (hinted steps draw nothing)."""
        wide = Sampler(model, streams, None, self.packed)
        wide.bit_generator = self.bit_generator
        wide.restore(self.state())  # each array's one stream broadcast to all of them
        return wide

    def state(self) -> tuple:
        """Copies of what run() carries from call to call (for restore())."""
        frame_state = (self.fed.copy(), self.position, self.drawn.copy()) if self.frame else ()
        return (self.h.copy(), self.previous.copy(), self.quiet.copy()) + frame_state

    def restore(self, state: tuple) -> None:
        """Go back to a state() (the draws go on from the bit generator)."""
        self.h[...], self.previous[...], self.quiet[...] = state[0], state[1], state[2]
        if self.frame:
            self.fed[...], self.position, self.drawn[...] = state[3], state[4], state[5]

    def run(self, levels: np.ndarray, hint: np.ndarray, hint_lengths: np.ndarray, probs: np.ndarray,
            temperature: float, truncation: tuple[int, float, float], means: np.ndarray | None = None,
            wake_after: int = 0) -> None:
        """Fill levels (S, n) with the next n steps; hint (S, nh) levels, hint_lengths (S,): steps
        t < hint_lengths[s] take the hint instead of a draw; probs (S, m, 256): the first m
        distributions (m may be 0), in the kernel's dtype (h's); means (S, n) in that dtype, or
        None: the mean sample of each step's distribution (_sample.generate's means); wake_after:
        steps of drawn silence before the model hears it dithered (0: never; _sample.generate)."""
        if means is None:
            means = np.empty(levels.shape, self.h.dtype)
        if not self.frame:
            _sample.generate(self.packed.dense, self.h, levels, hint, hint_lengths, self.previous, probs,
                             temperature, self.bit_generator, self.threads, *truncation, self.tuning,
                             self.packed.sparse, means=means, wake_after=wake_after, quiet=self.quiet,
                             half=self.packed.half)
            return
        n, m, start = levels.shape[1], probs.shape[1], 0
        while start < n:
            stop = min(n, start + self.frame - self.position)
            part = np.empty((levels.shape[0], stop - start), np.uint8)
            part_means = np.empty(part.shape, means.dtype)
            part_probs = np.empty((levels.shape[0], max(0, min(m, stop) - start), probs.shape[2]), probs.dtype)
            self.fed[:, self.position] = self.drawn
            cond = np.ascontiguousarray(self.h[self.layers] @ self.tier.CT)
            part_hint = np.ascontiguousarray(hint[:, start:stop])
            _sample.generate(self.packed.dense, self.h[: self.layers], part, part_hint,
                             np.clip(hint_lengths - start, 0, part_hint.shape[1]), self.previous, part_probs,
                             temperature, self.bit_generator, self.threads, *truncation, self.tuning,
                             self.packed.sparse, cond=cond, means=part_means, wake_after=wake_after,
                             quiet=self.quiet, half=self.packed.half)
            levels[:, start:stop] = part
            self.drawn[:] = part[:, -1]
            means[:, start:stop] = part_means
            probs[:, start : start + part_probs.shape[1]] = part_probs
            self.fed[:, self.position + 1 : self.position + stop - start] = part[:, :-1]
            self.position += stop - start
            if self.position == self.frame:
                inputs = frames.frame_inputs(self.fed, self.h.dtype)
                self.h[self.layers] = self.tier.step(self.h[self.layers], inputs)[0]
                self.position = 0
            start = stop
