"""The reference side of `just bench`: Ultralytics' own predictor on the same ONNX model.

    ultralytics_ref.py MODEL images REPS IMAGE...   per-image latency and 30-image stream
    ultralytics_ref.py MODEL video VIDEO            steady-state fps over a video

Prints one JSON object as its last stdout line (Ultralytics logs to stdout too). Timing is done
the same way as pump's side: latency per predict() call (decode included), and streams from
the first result to the last.
"""
import json
import sys
import time

from ultralytics import YOLO

ARGS = dict(imgsz=640, conf=0.25, iou=0.7, verbose=False)


def stream_rate(model, source):
    stamps = [time.perf_counter() for _ in model.predict(source, stream=True, **ARGS)]
    return len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main():
    model_path, mode = sys.argv[1], sys.argv[2]
    model = YOLO(model_path, task="pose")
    if mode == "video":
        frames, fps = stream_rate(model, sys.argv[3])
        print(json.dumps({"frames": frames, "fps": fps}))
        return
    reps, out = int(sys.argv[3]), {}
    for img in sys.argv[4:]:
        for _ in range(3):
            model.predict(img, **ARGS)
        totals = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model.predict(img, **ARGS)
            totals.append((time.perf_counter() - t0) * 1e3)
        totals.sort()
        # A list source is run as one batch and its results arrive together, so the stream is
        # timed whole: call to last result, over the number of images.
        n = reps + 1
        t0 = time.perf_counter()
        for _ in model.predict([img] * n, stream=True, **ARGS):
            pass
        out[img] = {"median_ms": totals[len(totals) // 2], "stream_ms": (time.perf_counter() - t0) * 1e3 / n}
    print(json.dumps(out))


main()
