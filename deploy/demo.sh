#!/usr/bin/env bash
# The services demo: a throw-away nats-server with pump-infer, pump-sets and pump-gateway; first
# VIDEO played losslessly (every frame posed, poses printed as they arrive), then the squat clip
# served by ffmpeg as a live HTTP MJPEG camera (reps counted, a set closed, the preview live);
# then everything stopped cleanly. Run by `just demo` after the build.
#
# DEMO_HOLD=1 keeps the services up at the end, so the preview can be looked at, until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
VIDEO="${1:?usage: demo.sh VIDEO [SQUAT_VIDEO]}"
SQUAT="${2:-$ROOT/testdata/squat_5reps_15fps.mp4}"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The documented ports when they are free (a user's bookmarks work), any free one otherwise.
port_or_free() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && free_port || echo "$1"; }

port="$(free_port)"
export PUMP_NATS_URL="nats://127.0.0.1:$port"
export PUMP_LOG="${PUMP_LOG:-warn}"
nats-server -c deploy/nats.conf -js -a 127.0.0.1 -p "$port" --store_dir "$work/store" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
echo "demo: nats-server on $PUMP_NATS_URL (JetStream, throw-away store)" >&2

# Each service's ops port: a free one, so a demo never collides with services already running.
grpc="127.0.0.1:$(port_or_free 50051)"
http="127.0.0.1:$(port_or_free 9104)"
export PUMP_GRPC_ADDR="$grpc"
PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-infer" --workers 1 &
infer=$!
pids+=($infer)
PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-sets" --exercise squat --quiet-seconds 4 &
sets=$!
pids+=($sets)
PUMP_HTTP_ADDR="$http" "$BIN/pump-gateway" &
gateway=$!
pids+=($gateway)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${http%:*}/${http##*:}") 2>/dev/null && break; sleep 0.05; done
echo "demo: live preview at http://$http/  (gRPC on $grpc; metrics at http://$http/metrics)" >&2

# The listener subscribes before capture starts, so it sees every pose; it leaves at end of stream.
"$BIN/pump" listen --until-end demo | python3 "$ROOT/deploy/summary.py" &
listener=$!
sleep 1
echo "demo: pump-capture publishes every frame of $VIDEO, paced by inference (lossless)" >&2
PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-capture" --camera "demo=$VIDEO"
# The summary may stop reading at the end-of-stream line before the listener writes again.
wait "$listener" || true

# The squat clip as a live network camera: ffmpeg serves it in real time as HTTP MJPEG (a stream
# with no clock of its own, as many IP cameras are), and pump-capture connects to it like any camera.
cam_port="$(free_port)"
cam_url="http://127.0.0.1:$cam_port/squat.mjpg"
ffmpeg -loglevel error -re -i "$SQUAT" -c:v mjpeg -q:v 3 -f mpjpeg -listen 1 "$cam_url" &
camera=$!
pids+=($camera)
# No probe: ffmpeg's -listen 1 serves its first client only. Capture retries a refused connection.
sleep 1
echo "demo: $(basename "$SQUAT") as a live HTTP camera ($cam_url); pump-capture follows it as camera 'squat' (watch it at http://$http/)" >&2
PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-capture" --camera "squat=$cam_url" &
capture=$!
pids+=($capture)
# Sets as they close: a live camera's set closes once no rep came for --quiet-seconds.
"$BIN/pump" sets squat --follow &
follower=$!
pids+=($follower)
sleep 4
echo "demo: cameras as the gateway sees them mid-clip (pump cameras)" >&2
"$BIN/pump" cameras
# The camera plays the clip once, then is gone; the set closes 4 s after its last rep.
wait "$camera" || true
for _ in $(seq 150); do [ -n "$("$BIN/pump" sets squat 2>/dev/null)" ] && break; sleep 0.1; done
sleep 0.5
kill -TERM "$follower" "$capture" 2>/dev/null || true
wait "$follower" 2>/dev/null || true
wait "$capture" 2>/dev/null || true
echo "demo: the sets the gateway has stored (pump sets)" >&2
"$BIN/pump" sets

if [ "${DEMO_HOLD:-0}" = 1 ]; then
  echo "demo: holding; the preview stays at http://$http/ until Ctrl-C" >&2
  wait "$gateway"
fi
status=0
for pid in "$infer" "$sets" "$gateway"; do
  kill -TERM "$pid"
  wait "$pid" || status=$?
done
echo "demo: every service stopped on SIGTERM (worst exit code $status)" >&2
exit "$status"
