#!/usr/bin/env bash
# The services demo: a throw-away nats-server, pump-infer and pump-capture on a video, the poses
# printed as they arrive, then everything stopped cleanly. Run by `just demo` after the build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
VIDEO="${1:?usage: demo.sh VIDEO}"
CAMERA=demo

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PUMP_NATS_URL="nats://127.0.0.1:$port"
export PUMP_LOG="${PUMP_LOG:-warn}"
nats-server -js -a 127.0.0.1 -p "$port" --store_dir "$work/store" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
echo "demo: nats-server on $PUMP_NATS_URL (JetStream, throw-away store)" >&2

"$BIN/pump-infer" --workers 1 &
infer=$!
pids+=($infer)
# The listener subscribes before capture starts, so it sees every pose; it leaves at end of stream.
"$BIN/pump" listen --until-end "$CAMERA" | python3 "$ROOT/deploy/summary.py" &
listener=$!
sleep 1
echo "demo: pump-capture publishes every frame of $VIDEO, paced by inference (lossless)" >&2
"$BIN/pump-capture" --camera "$CAMERA=$VIDEO"
# The summary may stop reading at the end-of-stream line before the listener writes again.
wait "$listener" || true
kill -TERM "$infer"
status=0
wait "$infer" || status=$?
echo "demo: capture ended at end of stream; pump-infer stopped on SIGTERM with exit code $status" >&2
exit "$status"
