#!/usr/bin/env python3
"""An int8 YOLO11n-pose from the shipped fp32 model, reproducibly (docs/MEASUREMENTS.md, "int8").

Static quantisation with ONNX Runtime (QDQ, per-channel int8 weights, uint8 activations,
MinMax calibration) on frames of the repository's own clips, letterboxed as pump does it (long
side 640, padded to a multiple of 32 with grey 114). What stays in float, and why (measured by
--compare): the head's post-processing (anchor decoding, DFL softmax, the score sigmoid, the
concatenations) — quantised, the person scores collapse —, the keypoint branch (--float-branch 4:
quantised, keypoints are 13 px off on a squat frame) and the stem (--float-module 0). With
--keep-last-convs only the last 1x1 convolution of each head branch stays in float instead.

    python3 deploy/int8/quantize.py -o models/yolo11n-pose-int8.onnx --float-branch 4 --float-module 0
    python3 deploy/int8/quantize.py --compare models/yolo11n-pose-int8.onnx
    pump detect --model models/yolo11n-pose-int8.onnx VIDEO

The first gives the same file every time (sha256 9b8a43a9...). Not recommended yet: reps stay
exact, keypoints do not stay within 2 px of fp32 (docs/MEASUREMENTS.md, "int8").

Needs: pip install onnxruntime==1.32.0 onnx numpy (ffmpeg for the frames).
"""
import argparse
import glob
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FP32 = os.path.join(ROOT, "models", "yolo11n-pose.onnx")
IMGSZ, STRIDE = 640, 32


def letterbox(rgb):
    """pump's (and Ultralytics') letterbox of an already resized frame: centred grey padding."""
    h, w, _ = rgb.shape
    ph, pw = -(-h // STRIDE) * STRIDE, -(-w // STRIDE) * STRIDE
    out = np.full((ph, pw, 3), 114, np.uint8)
    top, left = (ph - h) // 2, (pw - w) // 2
    out[top:top + h, left:left + w] = rgb
    return out.transpose(2, 0, 1)[None].astype(np.float32) / 255.0


def frames(path, every):
    """Every `every`-th frame of a video (or the image), long side 640, as model inputs."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    g = IMGSZ / max(w, h)
    nw, nh = max(1, round(w * g)), max(1, round(h * g))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf",
                          f"select=not(mod(n\\,{every})),scale={nw}:{nh}:flags=bilinear", "-vsync", "0",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    n = len(raw) // (nw * nh * 3)
    return [letterbox(np.frombuffer(raw, np.uint8, nw * nh * 3, i * nw * nh * 3).reshape(nh, nw, 3)) for i in range(n)]


def calibration_frames():
    clips = sorted(glob.glob(os.path.join(ROOT, "testdata", "clips", "*.mp4")))
    clips.append(os.path.join(ROOT, "testdata", "squat_5reps_15fps.mp4"))
    out = []
    for c in clips:
        out += frames(c, 45)
    return out


def excluded(model, keep_last_convs, float_branches=()):
    """Nodes left in float: the head's post-processing, optionally its last convolutions, and
    whole head branches (cv2 boxes, cv3 scores, cv4 keypoints)."""
    names = []
    for n in model.graph.node:
        if "/model.23/" not in n.name:
            continue
        if any(f"/model.23/cv{b}." in n.name for b in float_branches):
            names.append(n.name)
            continue
        in_branch = any(f"/model.23/cv{b}." in n.name for b in (2, 3, 4))
        last_conv = in_branch and n.op_type == "Conv" and any(
            n.name.endswith(f"cv{b}.{i}.2/Conv") or n.name.endswith(f"cv{b}.{i}.1.2/Conv")
            for b in (2, 3, 4) for i in range(3))
        if not in_branch or (keep_last_convs and last_conv):
            names.append(n.name)
    return names


def quantize(out, keep_last_convs, float_branches=(), method="minmax", float_modules=()):
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    data = calibration_frames()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"images": x}

    model = onnx.load(FP32)
    skip = excluded(model, keep_last_convs, float_branches)
    quantize_static(FP32, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                                      "entropy": CalibrationMethod.Entropy}[method],
                    nodes_to_exclude=skip + [n.name for n in model.graph.node
                                             if any(f"/model.{m}/" in n.name for m in float_modules)])
    print(f"{out}: {len(data)} calibration frames, {len(skip)} nodes in float", file=sys.stderr)


def nms(y, conf, iou):
    """The anchors NMS keeps (boxes cx, cy, w, h; score row 4), best first: one per person."""
    cand = np.where(y[4] > conf)[0]
    cand = cand[np.argsort(-y[4, cand])]
    box = lambda i: (y[0, i] - y[2, i] / 2, y[1, i] - y[3, i] / 2, y[0, i] + y[2, i] / 2, y[1, i] + y[3, i] / 2)
    keep = []
    for i in cand:
        a = box(i)
        ok = True
        for j in keep:
            b = box(j)
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = w * h
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            if union > 0 and inter / union > iou:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def compare(int8):
    """Keypoints and scores of int8 beside fp32 where fp32 sees a person, and one-thread ms."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    a = ort.InferenceSession(FP32, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(int8, so, providers=["CPUExecutionProvider"])
    inputs = frames(os.path.join(ROOT, "testdata", "bus.jpg"), 1) + frames(os.path.join(ROOT, "testdata", "zidane.jpg"), 1)
    inputs += frames(os.path.join(ROOT, "testdata", "squat_5reps_15fps.mp4"), 15)
    worst_kp, kps, score_fp, score_q, ta, tb = 0.0, [], [], [], 0.0, 0.0
    for x in inputs:
        t = time.perf_counter(); ya = a.run(None, {"images": x})[0][0]; ta += time.perf_counter() - t
        t = time.perf_counter(); yb = b.run(None, {"images": x})[0][0]; tb += time.perf_counter() - t
        people = nms(ya, 0.5, 0.7)
        for p in people:
            score_fp.append(ya[4, p]); score_q.append(yb[4, p])
            for k in range(17):
                if ya[5 + 3 * k + 2, p] > 0.5:
                    d = float(np.hypot(ya[5 + 3 * k, p] - yb[5 + 3 * k, p], ya[6 + 3 * k, p] - yb[6 + 3 * k, p]))
                    kps.append(d)
                    worst_kp = max(worst_kp, d)
    kps = np.array(kps)
    print(f"frames {len(inputs)}  people (fp32 NMS) {len(score_fp)}  keypoints {len(kps)}")
    print(f"keypoint error (input px): median {np.median(kps):.2f}  p95 {np.percentile(kps, 95):.2f}  max {worst_kp:.2f}")
    print(f"person score: fp32 mean {np.mean(score_fp):.3f}  int8 mean {np.mean(score_q):.3f}")
    print(f"one thread: fp32 {1e3 * ta / len(inputs):.1f} ms  int8 {1e3 * tb / len(inputs):.1f} ms  ({ta / tb:.2f}x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output")
    ap.add_argument("--keep-last-convs", action="store_true")
    ap.add_argument("--float-branch", type=int, action="append", default=[], help="2 boxes, 3 scores, 4 keypoints")
    ap.add_argument("--calibrate", default="minmax", choices=["minmax", "percentile", "entropy"])
    ap.add_argument("--float-module", type=int, action="append", default=[], help="a backbone/neck module left in float")
    ap.add_argument("--compare")
    a = ap.parse_args()
    if a.output:
        quantize(a.output, a.keep_last_convs, tuple(a.float_branch), a.calibrate, tuple(a.float_module))
    if a.compare:
        compare(a.compare)
