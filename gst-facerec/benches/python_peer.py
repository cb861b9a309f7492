#!/usr/bin/env python3
"""The issue's Python peer: what a plain script does with the same models, for the benchmark.

OpenCV's YuNet (`cv2.FaceDetectorYN`, `face_detection_yunet_2023mar.onnx`, score >= 0.85, NMS 0.3)
on a 640-wide downscale (INTER_AREA) of every frame, then, for every face at least 40 px wide in
the frame (the element's `min-face-size`), the 5-point similarity to the 150x150 dlib chip
(models/README.md section 3, sampled from the full frame with cv2.warpAffine) and the dlib ResNet
ONNX recognizer on ONNX Runtime (intra_op_num_threads=2, session.intra_op.allow_spinning=0), all
faces of a frame in one batch, nearest known face within 0.6. The known faces are the ones
demo_baseline.py and facerec-bench use: lin-manuel-miranda.png and alex-lacamoire.png, embedded
by the same pipeline. There is no tracking and no recognition cache: every face of every frame
is embedded.

Input: by default the sample clip, decoded with cv2.VideoCapture and scaled to 1280x720 inside
the loop with cv2.resize (INTER_LINEAR), as `videoscale` (bilinear) does in the element's
benchmark pipeline on the same clip; the scaling is counted in the time. `--height 0` takes the
clip's frames as they are (for a pre-scaled clip), `--height H` scales to 16:9 at H lines.

Setup (PyPI only; the versions this was measured with):

    python3 -m venv .cache/peer-venv
    .cache/peer-venv/bin/pip install opencv-python-headless==4.14.0.94 onnxruntime==1.32.0 numpy==2.4.6

(OpenCV 4.x: 5.0.0.93 also runs it, with a "new graph engine" warning and no faster detection.)

Run from the repository root:

    .cache/peer-venv/bin/python gst-facerec/benches/python_peer.py [--height 720] [--models DIR] [CLIP]

It prints the run's frames per second (frames over the wall time from before the imports to the
last frame: start-up, model loading, decode and scaling included), and as the last line one JSON
object: fps, frames, seconds, faces, embeddings and named_frames per name.
"""
import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared")
KNOWN = [("Lin-Manuel Miranda", "lin-manuel-miranda.png"), ("Alex Lacamoire", "alex-lacamoire.png")]
DETECT_WIDTH = 640
SCORE_THRESHOLD = 0.85
NMS_THRESHOLD = 0.3
MIN_FACE_SIZE = 40.0
MATCH_THRESHOLD = 0.6
THREADS = 2


def similarity(src, dst):
    """Least-squares similarity (Umeyama, no reflection) mapping src points to dst: 2x3."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    a = np.zeros((2, 3))
    a[:, :2] = scale * rot
    a[:, 2] = mu_d - scale * rot @ mu_s
    return a


class Aligner:
    """models/README.md section 3: template -> landmarks similarity, 2x2 box halving while the
    chip is more than 2 image pixels per chip pixel, dlib's centred sampling, bilinear, zeros
    outside."""

    def __init__(self, template):
        self.template = np.asarray(template, dtype=np.float64)
        self.pyramid = []

    def new_frame(self, rgb):
        self.pyramid = [rgb]

    def level(self, n):
        while len(self.pyramid) <= n:
            top = self.pyramid[-1]
            h, w = top.shape[0] // 2, top.shape[1] // 2
            self.pyramid.append(cv2.resize(top[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA))
        return self.pyramid[n]

    def chip(self, landmarks):
        points = np.asarray(landmarks, dtype=np.float64)
        a = similarity(self.template, points)
        n = 0
        while np.hypot(a[0, 0], a[1, 0]) > 2.0:
            points = (points + 0.5) / 2.0 - 0.5
            n += 1
            a = similarity(self.template, points)
        s = np.hypot(a[0, 0], a[1, 0])
        rot = a[:, :2] / s
        centre = a @ np.array([75.0, 75.0, 1.0])
        k = (150.0 * s - 1.0) / 149.0
        m = np.zeros((2, 3))
        m[:, :2] = k * rot
        m[:, 2] = centre - k * rot @ np.array([74.5, 74.5])
        return cv2.warpAffine(self.level(n), m, (150, 150),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class Pipeline:
    def __init__(self, models):
        cv2.setNumThreads(THREADS)
        self.detector = cv2.FaceDetectorYN.create(
            os.path.join(models, "face_detection_yunet_2023mar.onnx"), "", (DETECT_WIDTH, DETECT_WIDTH),
            SCORE_THRESHOLD, NMS_THRESHOLD, 5000)
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.recognizer = ort.InferenceSession(
            os.path.join(models, "dlib_face_recognition_resnet_model_v1.onnx"), options,
            providers=["CPUExecutionProvider"])
        with open(os.path.join(models, "yunet_to_dlib_chip_template.json")) as f:
            self.aligner = Aligner(json.load(f)["template_xy"])
        self.size = None

    def detect(self, bgr):
        """Faces of the frame in frame pixels: (box x, y, w, h, landmarks 5x2, score)."""
        h, w = bgr.shape[:2]
        if w > DETECT_WIDTH:
            dw, dh = DETECT_WIDTH, max(1, round(h * DETECT_WIDTH / w))
            small = cv2.resize(bgr, (dw, dh), interpolation=cv2.INTER_AREA)
        else:
            dw, dh, small = w, h, bgr
        if self.size != (dw, dh):
            self.detector.setInputSize((dw, dh))
            self.size = (dw, dh)
        _, rows = self.detector.detect(small)
        sx, sy = w / dw, h / dh
        faces = []
        for row in rows if rows is not None else []:
            box = (row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy)
            marks = np.stack([(row[4:14:2] + 0.5) * sx - 0.5, (row[5:14:2] + 0.5) * sy - 0.5], axis=1)
            faces.append((box, marks, float(row[14])))
        return faces

    def embed(self, bgr, faces):
        """One embedding per face, in one batch."""
        if not faces:
            return np.zeros((0, 128), np.float32)
        self.aligner.new_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        chips = np.stack([self.aligner.chip(marks) for _, marks, _ in faces])
        batch = chips.astype(np.float32).transpose(0, 3, 1, 2)
        return self.recognizer.run(None, {"input": batch})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", nargs="?", default=os.path.join(SHARED, "testdata", "face_recognition",
                                                                "short_hamilton_clip.mp4"))
    parser.add_argument("--height", type=int, default=720,
                        help="scale frames to 16:9 at this height inside the loop (0: as they are)")
    parser.add_argument("--models", default=os.path.join(SHARED, "models"))
    parser.add_argument("--known-dir", default=os.path.join(SHARED, "testdata", "face_recognition"))
    args = parser.parse_args()

    pipeline = Pipeline(args.models)
    names, known = [], []
    for name, photo in KNOWN:
        image = cv2.imread(os.path.join(args.known_dir, photo), cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f"python_peer: cannot read {photo} in {args.known_dir}")
        faces = pipeline.detect(image)
        if not faces:
            sys.exit(f"python_peer: no face found in {photo}")
        best = max(faces, key=lambda f: f[2])
        names.append(name)
        known.append(pipeline.embed(image, [best])[0])
    known = np.stack(known)

    capture = cv2.VideoCapture(args.clip)
    if not capture.isOpened():
        sys.exit(f"python_peer: cannot open {args.clip}")
    frames = faces_seen = embeddings = 0
    named = {name: 0 for name in names}
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if args.height:
            size = (args.height * 16 // 9, args.height)
            if (bgr.shape[1], bgr.shape[0]) != size:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        faces = pipeline.detect(bgr)
        faces_seen += len(faces)
        faces = [f for f in faces if f[0][2] >= MIN_FACE_SIZE]
        vectors = pipeline.embed(bgr, faces)
        embeddings += len(vectors)
        in_frame = set()
        for vector in vectors:
            distances = np.linalg.norm(known - vector, axis=1)
            best = int(distances.argmin())
            if distances[best] < MATCH_THRESHOLD:
                in_frame.add(names[best])
        for name in in_frame:
            named[name] += 1
        frames += 1
    seconds = time.perf_counter() - STARTED
    if frames == 0:
        sys.exit(f"python_peer: no frames decoded from {args.clip}")
    fps = frames / seconds
    print(f"python peer: {frames} frames in {seconds:.2f} s, {fps:.1f} fps (start-up and decode included); "
          f"{faces_seen} faces, {embeddings} embeddings; named frames: "
          + ", ".join(f"{n} {c}" for n, c in named.items()))
    print(json.dumps({"case": "python peer", "clip": args.clip, "height": args.height, "fps": fps,
                      "frames": frames, "seconds": seconds, "faces": faces_seen, "embeddings": embeddings,
                      "named_frames": named}))


if __name__ == "__main__":
    main()
