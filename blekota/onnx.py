"""ONNX export: the network as a standard ONNX graph that any ONNX runtime can run.

The graph (opset 17, float32) runs a window of T steps for B streams at once; T and B are
dynamic, so the same file steps one sample at a time (T = 1) or listens to a whole window:

  inputs   level   (T, B) int64     levels 0..255 fed to the network (input="level", the default)
           onehot  (T, B, 256)      instead of level with input="onehot": one-hot rows
           h0      (layers, B, H)   the hidden state before the window (zeros to start)
  outputs  probs   (T, B, 256)      p[t, b] = distribution of the level after input t of stream b
           logits  (T, B, 256)      the softmax's input (divide by a temperature to sharpen)
           h       (layers, B, H)   the hidden state after the window: the next call's h0

The level input is a Gather from a 256 x 256 identity (the one-hot row). Each layer is ONNX's
standard GRU operator with linear_before_reset=0, which applies the reset gate before the
recurrent product as our cell does. ONNX's update gate runs the other way round (it is the share
of the old state: h' = (1 - z) h~ + z h), so its z weights and biases are ours negated:
sigmoid(-a) = 1 - sigmoid(a). The export is float32 whatever the model's dtype: onnxruntime's
GRU runs float32 only. The model's metadata_props hold fs, layers, hidden, levels, the
silence level and the pre-emphasis (0: none; else the drawn samples are to be filtered back, see
blekota.emphasis), so a program using the file needs nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .audio import OTHER_SOUND_SUFFIXES
from .checks import file_name
from .errors import BlekotaError, ConfigError, install_hint
from .fileutil import open_output, refused_suffix
from .model import Model
from .mulaw import LEVELS, MU, SILENCE

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    import onnx

OPSET = 17  # GRU, Gather, Softmax(axis=-1), Squeeze with axes as input: all in onnxruntime >= 1.11
IR_VERSION = 8  # the IR version of opset 17, so older runtimes read the file too
INPUTS = ("level", "onehot")
MAX_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit on one message, less room for the graph itself
OTHER_SUFFIXES = frozenset({".npz", ".pkl", ".wav"} | OTHER_SOUND_SUFFIXES)  # names of other kinds of file


def import_onnx() -> ModuleType:
    """The onnx package, or a BlekotaError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise BlekotaError(f"exporting to ONNX needs the onnx package: {install_hint('onnx')}") from None
    return onnx


def _gru_tensors(state: dict[str, np.ndarray], layer: int, inputs: int, hidden: int):
    """ONNX GRU W (1, 3H, X), R (1, 3H, H), B (1, 6H) of one layer, gates in ONNX's order z, r, h."""
    X, H = inputs, hidden
    gates = (-state[f"gru{layer}.Wz"], state[f"gru{layer}.Wr"], state[f"gru{layer}.W"])
    w = np.concatenate([g[:, :X] for g in gates])[None]
    r = np.concatenate([g[:, X : X + H] for g in gates])[None]
    b = np.concatenate([g[:, -1] for g in gates] + [np.zeros(3 * H)])[None]
    return w, r, b


def to_onnx(model: Model, input: str = "level") -> onnx.ModelProto:
    """The model as an in-memory float32 ONNX ModelProto; see the module docstring.

    input: "level" (int64 levels, the default) or "onehot" (float32 rows of 256). Raises
    ConfigError for a model with a frame tier or over 2 GiB of weights, BlekotaError when the onnx
    package is missing.
    """
    if not isinstance(model, Model):
        raise ConfigError(f"to_onnx needs a blekota Model, got {type(model).__name__}")
    if input not in INPUTS:
        raise ConfigError(f"input must be one of {', '.join(INPUTS)}, got {input!r}")
    if model.frame:
        raise ConfigError("a model with a frame tier has no ONNX export yet: only the stack's graph is written")
    weight_bytes = 4 * (model.n_params + LEVELS * LEVELS)
    if weight_bytes > MAX_BYTES:
        raise ConfigError(
            f"a {model.layers}x{model.hidden} model has {weight_bytes / 2**30:.1f} GiB of weights, "
            "more than one ONNX file holds (2 GiB)"
        )
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    layers, H = model.layers, model.hidden
    state = model.state_dict()
    initializers = []

    def constant(name: str, value: np.ndarray) -> str:
        kind = np.int64 if np.issubdtype(value.dtype, np.integer) else np.float32
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, kind), name))
        return name

    nodes = []
    if input == "level":
        graph_input = helper.make_tensor_value_info("level", TensorProto.INT64, ["time", "batch"])
        table = constant("levels.onehot", np.eye(LEVELS))
        nodes.append(helper.make_node("Gather", [table, "level"], ["onehot"], name="onehot"))
    else:
        graph_input = helper.make_tensor_value_info("onehot", TensorProto.FLOAT, ["time", "batch", LEVELS])
    h0 = helper.make_tensor_value_info("h0", TensorProto.FLOAT, [layers, "batch", H])
    layer_h0 = [f"gru{layer}.h0" for layer in range(layers)]
    nodes.append(helper.make_node("Split", ["h0"], layer_h0, axis=0, name="split_h0"))
    squeeze_axes = constant("axes.direction", np.array([1]))

    x = "onehot"
    layer_h = []
    for layer in range(layers):
        w, r, b = _gru_tensors(state, layer, LEVELS if layer == 0 else H, H)
        names = [constant(f"gru{layer}.{part}", value) for part, value in (("W", w), ("R", r), ("B", b))]
        y, y_h = f"gru{layer}.Y", f"gru{layer}.h"
        nodes.append(helper.make_node(
            "GRU", [x, *names, "", layer_h0[layer]], [y, y_h], name=f"gru{layer}",
            hidden_size=H, linear_before_reset=0,
        ))
        x = f"gru{layer}.out"
        nodes.append(helper.make_node("Squeeze", [y, squeeze_axes], [x], name=f"gru{layer}.squeeze"))
        layer_h.append(y_h)
    Wy = state["out.Wy"]
    wy, by = constant("out.WyT", Wy[:, :H].T), constant("out.by", Wy[:, H])
    nodes += [
        helper.make_node("MatMul", [x, wy], ["out.product"], name="out.matmul"),
        helper.make_node("Add", ["out.product", by], ["logits"], name="out.bias"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("Concat", layer_h, ["h"], axis=0, name="h"),
    ]
    outputs = [
        helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["time", "batch", LEVELS]),
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["time", "batch", LEVELS]),
        helper.make_tensor_value_info("h", TensorProto.FLOAT, [layers, "batch", H]),
    ]
    graph = helper.make_graph(
        nodes, "blekota", [graph_input, h0], outputs, initializers,
        doc_string=f"A {layers}x{H} blekota GRU over {LEVELS} mu-law levels at {model.fs} Hz: "
        "feed each drawn level back in as the next input and h back as h0."
        + (f" The levels are of the pre-emphasized sound y[t] = x[t] - {model.preemphasis:g} x[t-1]: "
           f"turn drawn samples back with x[t] = y[t] + {model.preemphasis:g} x[t-1]." if model.preemphasis else ""),
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="blekota",
        doc_string="Next-sample distributions of a blekota model; see blekota.onnx.",
    )
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, {
        "fs": str(model.fs), "layers": str(layers), "hidden": str(H), "levels": str(LEVELS),
        "mu": str(MU), "silence": str(SILENCE), "input": input, "preemphasis": repr(model.preemphasis),
    })
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: Model, path: str | os.PathLike, input: str = "level") -> Path:
    """Write the model as a float32 ONNX file (see to_onnx), atomically; returns the path.

    Raises ConfigError, writing nothing, when path is named as a model file, a pickle or a sound
    (OTHER_SUFFIXES: an ONNX file there would replace one by surprise)."""
    path = Path(file_name("path", path))
    refused = refused_suffix(path, OTHER_SUFFIXES)
    if refused:
        suffix, named = refused
        raise ConfigError(f"{named}: an ONNX file is written here, not {suffix[1:]}; give it a name ending in .onnx")
    proto = to_onnx(model, input)
    try:
        with open_output(path) as out:
            out.write(proto.SerializeToString())
    except OSError as error:
        raise BlekotaError(f"{path}: could not write ({error.strerror or error})") from None
    return path
