#!/usr/bin/env bash
# The GPU check, for a CUDA host: builds pump with the `cuda` feature and onnxruntime-gpu's
# library (1.31.1, CUDA 13; cuDNN and cuBLAS as the host has them), runs `pump detect --device
# cuda` on the sample video and pump-infer on CAMERAS live cameras at batch 1, 8 and 32, and
# prints poses/s, model ms and the provider each really ran on; it fails when that provider is
# not CUDA's. `PUMP_CHECK_DEVICE=cpu` runs the same steps on CPU (any machine: a dry run of the
# script itself, expecting CPUExecutionProvider).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DEVICE="${PUMP_CHECK_DEVICE:-cuda}"
VIDEO="${PUMP_CHECK_VIDEO:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}"
CAMERAS="${PUMP_CHECK_CAMERAS:-4}"
SECONDS_EACH="${PUMP_CHECK_SECONDS:-20}"
say() { printf 'gpu-check: %s\n' "$*" >&2; }

if [ "$DEVICE" = cpu ]; then
  want=CPUExecutionProvider
  cargo build --release -q -p pump-cli -p pump-infer -p pump-capture
  BIN=target/release
  export PUMP_ORT_LIB="$ROOT/.cache/onnxruntime/libonnxruntime.so.1.32.0"
else
  want=CUDAExecutionProvider
  ORT_DIR="$ROOT/.cache/onnxruntime-gpu"
  if [ ! -e "$ORT_DIR/libonnxruntime.so.1.31.1" ]; then
    say "onnxruntime-gpu 1.31.1's libraries (≈284 MB) into $ORT_DIR"
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" onnxruntime-gpu==1.31.1
    mkdir -p "$ORT_DIR"
    python3 - "$tmp" "$ORT_DIR" <<'PY'
import glob, sys, zipfile
z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
for n in z.namelist():
    if n.startswith("onnxruntime/capi/libonnxruntime"):
        open(sys.argv[2] + "/" + n.split("/")[-1], "wb").write(z.read(n))
PY
    rm -rf "$tmp"
  fi
  cargo build --release -q --features cuda -p pump-cli -p pump-infer -p pump-capture --target-dir target/cuda
  BIN=target/cuda/release
  export PUMP_ORT_LIB="$ORT_DIR/libonnxruntime.so.1.31.1"
fi

# 1. pump detect on the video: frames a second, end to end.
t0=$(date +%s.%N)
frames=$("$BIN/pump" detect --device "$DEVICE" --no-progress "$VIDEO" | wc -l)
t1=$(date +%s.%N)
python3 -c "print(f'pump detect --device $DEVICE: $frames frames in {$t1-$t0:.1f} s, {$frames/($t1-$t0):.1f} fps')"

# 2. pump-infer on live cameras (the video replayed in real time), batch 1, 8 and 32.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
nats_port="$(free_port)"
nats-server -c deploy/nats.conf -js -a 127.0.0.1 -p "$nats_port" --store_dir "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)
export PUMP_NATS_URL="nats://127.0.0.1:$nats_port" PUMP_LOG=warn
get() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://$1$2', timeout=2).read().decode())"; }
# Sums of pump-infer's counters: frames inferred, model seconds, model runs.
totals() {
  get "$1" /metrics | python3 -c '
import sys
t = {"pump_infer_frames_inferred_total": 0.0, "pump_infer_seconds_sum": 0.0, "pump_infer_seconds_count": 0.0}
for line in sys.stdin:
    name = line.split("{")[0].split(" ")[0]
    if name in t:
        t[name] += float(line.rsplit(" ", 1)[1])
print(*t.values())'
}
cams=()
for i in $(seq 0 $((CAMERAS - 1))); do cams+=(--camera "cam$i=$VIDEO"); done
failed=0
printf '| batch | cameras | poses/s | model ms per run | provider |\n|---|---|---|---|---|\n'
for batch in 1 8 32; do
  http="127.0.0.1:$(free_port)"
  PUMP_HTTP_ADDR="$http" "$BIN/pump-infer" --device "$DEVICE" --batch "$batch" &
  infer=$!
  for _ in $(seq 600); do get "$http" /readyz >/dev/null 2>&1 && break; sleep 0.1; done
  provider=$(get "$http" /healthz | python3 -c 'import json,sys; print(json.load(sys.stdin)["provider"])')
  PUMP_HTTP_ADDR="127.0.0.1:$(free_port)" "$BIN/pump-capture" --realtime "${cams[@]}" &
  capture=$!
  sleep 5
  read -r n0 s0 c0 < <(totals "$http")
  sleep "$SECONDS_EACH"
  read -r n1 s1 c1 < <(totals "$http")
  kill -TERM "$capture" "$infer"; wait "$capture" "$infer" || true
  python3 -c "r=($c1-$c0) or 1; print(f'| $batch | $CAMERAS | {($n1-$n0)/$SECONDS_EACH:.1f} | {1e3*($s1-$s0)/r:.1f} | $provider |')"
  [ "$provider" = "$want" ] || { say "batch $batch ran on $provider, not $want"; failed=1; }
done
exit "$failed"
