"""Summarises `pump detect` JSON lines on stdin: people per frame, and one closing line."""
import json
import sys

frames = people = with_people = 0
for line in sys.stdin:
    rec = json.loads(line)
    n = len(rec["poses"])
    frames += 1
    people += n
    with_people += n > 0
    if frames <= 5 or frames % 100 == 0:
        scores = ", ".join(f"{p['score']:.2f}" for p in rec["poses"])
        print(f"frame {rec['frame']:>4}  t={rec['ts']:7.3f}s  {n} people  [{scores}]")
print(f"summary: {frames} frames, {people} poses, {with_people} frames with people, "
      f"{people / max(frames, 1):.2f} people per frame")
