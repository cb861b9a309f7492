#!/usr/bin/env python3
"""Reduced-precision variants of the two fp32 models (issue 14, part 3).

    quantize.py --variant fp16|int8 -i MODEL.onnx -o MODEL.<variant>.onnx

* fp16: onnxruntime's own float16 converter (`onnxruntime.transformers.float16`, the same code
  as onnxconverter-common's) with `keep_io_types=True`, so the inputs and outputs stay float32
  and the Rust code feeds the same tensors. Ops without an fp16 kernel on a provider run behind
  Cast nodes that onnxruntime inserts at session creation.
* int8: onnxruntime's *static* quantization (`quantize_static`, QDQ format, int8 weights per
  output channel, uint8 activations, MinMax calibration) after `quant_pre_process` (which folds
  the recognizer's per-channel Mul/Add into its convolutions) and, for YuNet, an opset 11 -> 13
  upgrade (per-channel QDQ needs opset 13). Dynamic quantization was tried first and rejected:
  it turns every Conv into ConvInteger, which onnxruntime's CPU provider runs 4x (recognizer) to
  15x (YuNet) slower than fp32 here, so it can never be worth selecting.
  Calibration set: the nine `knn_examples/train` enrolment photos of the shared test data. The
  detector sees each photo scaled to at most 640 px on its long side (the element's default
  network width) and zero-padded to a multiple of 32, BGR 0..255. The recognizer sees the
  150x150 chip of each face with score >= 0.85, aligned as shared/models/README.md section 3 says
  from the YuNet landmarks recorded in `testdata/expected/yunet_detections.json`. The input and
  output stay float32.

The output is written atomically (a temp file beside it, then rename) and its sha256 printed as
`OUTPUT: sha256 <hex>`, like dlib_to_onnx.py; `facerec-model models fetch --variant` checks it
against the value recorded in gst-facerec/core/src/models.rs. Both conversions are
deterministic for a given fp32 file and package set (checked by converting twice).
"""

import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np
import onnx


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(model, keep_io_types=True)
    # The converter appends the input/output Cast nodes at the end of the node list; ONNX wants
    # the graph topologically sorted (onnx.checker refuses it otherwise).
    toposort(model.graph)
    return model


def toposort(graph: onnx.GraphProto) -> None:
    """Stable topological sort of the nodes: each node after the producers of its inputs."""
    produced = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in produced for name in node.input):
                ordered.append(node)
                produced.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input at {rest[0].name}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


# dlib chip template for YuNet's five landmarks (shared/models/yunet_to_dlib_chip_template.json).
TEMPLATE = np.array(
    [[46.35, 45.56], [101.88, 45.58], [74.37, 78.70], [49.87, 103.94], [98.82, 103.90]]
)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src onto dst, as a 2x3 matrix."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    u, sv, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sv) @ sign) / ((s**2).sum() / len(src))
    a = np.zeros((2, 3))
    a[:, :2] = scale * rot
    a[:, 2] = md - scale * rot @ ms
    return a


def chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 150x150 dlib chip (README section 3, steps 1-4, bilinear, outside = 0), NCHW RGB."""
    a = similarity(TEMPLATE, landmarks)
    s = np.hypot(a[0, 0], a[1, 0])
    rot, centre, k = a[:, :2] / s, a @ [75.0, 75.0, 1.0], (150 * s - 1) / 149
    cc, rr = np.meshgrid(np.arange(150) - 74.5, np.arange(150) - 74.5)
    x, y = centre[:, None, None] + k * np.einsum("ij,jhw->ihw", rot, np.stack([cc, rr]))
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    h, w = image.shape[:2]

    def at(yy, xx):
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        return image[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)] * inside[..., None]

    out = (
        at(y0, x0) * (1 - fx) * (1 - fy)
        + at(y0, x0 + 1) * fx * (1 - fy)
        + at(y0 + 1, x0) * (1 - fx) * fy
        + at(y0 + 1, x0 + 1) * fx * fy
    )
    return out.transpose(2, 0, 1)[None].astype(np.float32)


def calibration_inputs(testdata: str, detector: bool) -> list:
    from PIL import Image

    import json

    with open(os.path.join(testdata, "expected/yunet_detections.json")) as f:
        detections = json.load(f)["images"]
    photos = sorted(k for k in detections if "/knn_examples/train/" in k)
    if len(photos) != 9:
        raise ValueError(f"expected the 9 knn_examples/train photos in {testdata}, found {len(photos)}")
    inputs = []
    for name in photos:
        image = Image.open(os.path.join(testdata, name)).convert("RGB")
        if detector:
            w, h = image.size
            scale = min(1.0, 640 / max(w, h))
            if scale < 1:
                image = image.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
            bgr = np.asarray(image, np.float32)[:, :, ::-1]
            h, w = bgr.shape[:2]
            x = np.zeros((1, 3, (h + 31) // 32 * 32, (w + 31) // 32 * 32), np.float32)
            x[0, :, :h, :w] = bgr.transpose(2, 0, 1)
            inputs.append(x)
        else:
            rgb = np.asarray(image, np.float32)
            for row in detections[name]["yunet_s_dynamic"]:
                if row[14] >= 0.85:
                    inputs.append(chip(rgb, np.array(row[4:14]).reshape(5, 2)))
    return inputs


def to_int8(src: str, dst: str, testdata: str) -> None:
    import onnx.version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, inputs):
            self.inputs = iter(inputs)

        def get_next(self):
            x = next(self.inputs, None)
            return None if x is None else {"input": x}

    model = onnx.load(src)
    detector = len(model.graph.output) > 1  # YuNet has 12 outputs, the recognizer one
    with tempfile.TemporaryDirectory(dir=os.path.dirname(dst)) as tmp:
        if model.opset_import[0].version < 13:
            model = onnx.version_converter.convert_version(model, 13)
        upgraded, pre = os.path.join(tmp, "opset13.onnx"), os.path.join(tmp, "pre.onnx")
        onnx.save(model, upgraded)
        # No symbolic shape inference (it needs sympy); onnx's own shape inference suffices.
        quant_pre_process(upgraded, pre, skip_symbolic_shape=True)
        quantize_static(
            pre,
            dst,
            Reader(calibration_inputs(testdata, detector)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", required=True, choices=["fp16", "int8"])
    p.add_argument("-i", "--input", required=True, help="the fp32 model")
    p.add_argument("-o", "--output", required=True, help="the variant to write")
    p.add_argument(
        "--testdata",
        default=os.environ.get("FACEREC_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
        + "/testdata",
        help="the shared test data (int8 calibration photos); default $FACEREC_SHARED_DIR/testdata",
    )
    args = p.parse_args()

    out_dir = os.path.dirname(os.path.abspath(args.output))
    fd, staging = tempfile.mkstemp(prefix=".quantize-", suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        if args.variant == "fp16":
            model = to_fp16(onnx.load(args.input))
            onnx.checker.check_model(model, full_check=True)
            onnx.save(model, staging)
        else:
            to_int8(args.input, staging, args.testdata)
            onnx.checker.check_model(onnx.load(staging), full_check=True)
        os.chmod(staging, 0o644)  # mkstemp makes it 0600
        os.replace(staging, args.output)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
    print(f"OUTPUT: sha256 {sha256(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
