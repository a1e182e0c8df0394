#!/usr/bin/env bash
# The services demo, through `pump up`: one config (written here: the squat clip served by ffmpeg
# as a live HTTP MJPEG camera, free ports), nats-server and every service started by `pump up`;
# reps counted and a set closed on the live camera, then VIDEO played losslessly through the same
# services (every frame posed, poses printed as they arrive); then Ctrl-C's orderly stop.
# Run by `just demo` after the build.
#
# On a terminal (or DEMO_HOLD=1) everything stays up at the end, the squat camera looping, so the
# preview can be looked at, until Ctrl-C; DEMO_HOLD=0 never holds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
# The nats-server `just setup` pins (pump up would find it from the checkout's root too).
export PUMP_NATS_SERVER="${PUMP_NATS_SERVER:-$ROOT/.cache/nats-server/nats-server}"
VIDEO="${1:?usage: demo.sh VIDEO [SQUAT_VIDEO]}"
SQUAT="${2:-$ROOT/testdata/squat_5reps_15fps.mp4}"

work="$(mktemp -d)"
up=""
camera=""
cleanup() {
  [ -n "$camera" ] && kill "$camera" 2>/dev/null || true
  if [ -n "$up" ] && kill -0 "$up" 2>/dev/null; then kill -INT "$up"; wait "$up" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The documented ports when they are free (a user's bookmarks work), any free one otherwise.
port_or_free() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && free_port || echo "$1"; }

grpc="127.0.0.1:$(port_or_free 50051)"
http="127.0.0.1:$(port_or_free 9104)"
export PUMP_NATS_URL="nats://127.0.0.1:$(free_port)" PUMP_GRPC_ADDR="$grpc"
# The squat clip as a live network camera: ffmpeg serves it in real time as HTTP MJPEG (a stream
# with no clock of its own, as many IP cameras are) to its first client, pump-capture.
cam_url="http://127.0.0.1:$(free_port)/squat.mjpg"
ffmpeg -loglevel error -re -i "$SQUAT" -c:v mjpeg -q:v 3 -f mpjpeg -listen 1 "$cam_url" &
camera=$!
cat >"$work/demo.toml" <<CONFIG
nats_url = "$PUMP_NATS_URL"
log = "warn"

[cameras.squat]
source = "$cam_url"
exercise = "squat"

[capture]
http_addr = "127.0.0.1:$(free_port)"

[infer]
http_addr = "127.0.0.1:$(free_port)"

[sets]
http_addr = "127.0.0.1:$(free_port)"
quiet_seconds = 4

[gateway]
http_addr = "$http"
grpc_addr = "$grpc"
clips = true
CONFIG
echo "demo: pump up with $work/demo.toml (the squat clip as live camera 'squat' at $cam_url)" >&2
# Its own session: Ctrl-C reaches this script only, which then stops pump up in order.
setsid "$BIN/pump" up "$work/demo.toml" --data "$work/data" > >(trap '' INT; exec tee "$work/up.log") &
up=$!
for _ in $(seq 600); do grep -q "^preview:" "$work/up.log" 2>/dev/null && break; sleep 0.2; done
grep -q "^preview:" "$work/up.log" || { echo "demo: pump up did not come up" >&2; exit 1; }

# Sets as they close: a live camera's set closes once no rep came for quiet_seconds.
"$BIN/pump" sets squat --follow &
follower=$!
sleep 4
echo "demo: cameras as the gateway sees them mid-clip (pump cameras)" >&2
"$BIN/pump" cameras
# The camera plays the clip once, then is gone; the set closes 4 s after its last rep.
wait "$camera" || true
camera=""
for _ in $(seq 150); do [ -n "$("$BIN/pump" sets squat 2>/dev/null)" ] && break; sleep 0.1; done
sleep 0.5
kill -TERM "$follower" 2>/dev/null || true
wait "$follower" 2>/dev/null || true
# The set's clip, as the preview lists it (written a second or two after the set closes).
python3 - "http://$http" <<'PY' >&2 || true
import json, sys, time, urllib.request
base = sys.argv[1]
for _ in range(50):
    cams = json.load(urllib.request.urlopen(base + "/api/cameras"))["cameras"]
    clips = [s["clip"] for c in cams if c["camera"] == "squat" for s in c["sets"] if s.get("clip")]
    if clips:
        size = len(urllib.request.urlopen(base + clips[0]).read())
        print(f"demo: the set's clip (skeleton and rep count burnt in): {base}{clips[0]} ({size} bytes)")
        break
    time.sleep(0.2)
else:
    print("demo: no clip of the squat set listed")
PY

# The listener subscribes before the file plays, so it sees every pose; it leaves at end of stream.
"$BIN/pump" listen --until-end demo | python3 "$ROOT/deploy/summary.py" &
listener=$!
sleep 1
echo "demo: pump-capture publishes every frame of $VIDEO, paced by inference (lossless)" >&2
PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-capture" --camera "demo=$VIDEO"
wait "$listener" || true
echo "demo: the sets the gateway has stored (pump sets)" >&2
"$BIN/pump" sets

# On a terminal the demo ends with the preview up and the squat camera live again (looping),
# until Ctrl-C; in a script it stops at once. DEMO_HOLD=1/0 says which.
if [ "${DEMO_HOLD:-$([ -t 0 ] && echo 1 || echo 0)}" = 1 ]; then
  # Ctrl-C is for this script; cleanup stops the camera.
  (trap '' INT; exec ffmpeg -loglevel error -stream_loop -1 -re -i "$SQUAT" -c:v mjpeg -q:v 3 -f mpjpeg -listen 1 "$cam_url") &
  camera=$!
  echo "demo: holding; the squat camera is live again (capture reconnects within its backoff) and" >&2
  echo "demo: the preview is at http://$http/ — its sets close 4 s after each fifth rep. Ctrl-C to stop." >&2
  trap 'echo; echo "demo: stopping" >&2' INT
  wait "$up" || true
fi
kill -INT "$up"
status=0
wait "$up" || status=$?
up=""
echo "demo: pump up stopped every service in order (exit code $status)" >&2
exit "$status"
