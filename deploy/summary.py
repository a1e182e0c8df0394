"""Summarises `pump detect` / `pump listen` JSON lines on stdin: people per frame, one closing line."""
import json
import sys

frames = people = with_people = 0
for line in sys.stdin:
    rec = json.loads(line)
    if rec.get("end_of_stream"):
        print(f"end of stream after frame {rec['frame'] - 1}")
        break
    n = len(rec["poses"])
    frames += 1
    people += n
    with_people += n > 0
    if frames <= 5 or frames % 100 == 0:
        scores = ", ".join(f"{p['score']:.2f}" for p in rec["poses"])
        age = f"  age {rec['age_ms']:6.1f} ms" if "age_ms" in rec else ""
        print(f"frame {rec['frame']:>4}  t={rec['ts']:7.3f}s  {n} people  [{scores}]{age}", flush=True)
print(f"summary: {frames} frames, {people} poses, {with_people} frames with people, "
      f"{people / max(frames, 1):.2f} people per frame")
