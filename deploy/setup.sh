#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run pump. Idempotent and
# non-interactive: each step checks first and does nothing when its work is already done.
set -euo pipefail

ORT_VERSION="${PUMP_ORT_VERSION:-1.32.0}"
MODEL_SHA256="fa334af44e5934f70d03d9556efb55f33a5ef1e434a9bb4d208daef5f6eab534"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_DIR="$ROOT/.cache/onnxruntime"

say() { printf 'setup: %s\n' "$*" >&2; }

# 1. Debian packages: OpenCV + clang for the opencv crate, nats-server for the bus, protoc for
#    the protos, ffmpeg for test media, opencv-doc for the sample video, chromium for the test
#    that looks at the gateway's preview page the way a browser shows it, openssl for the
#    certificates the security tests make, podman (runc, podman-compose) and mmdebstrap to build
#    and run the images with no registry (deploy/images.sh, tests/tests/containers.rs), and
#    python3-venv for the Python client example's test (grpcio from PyPI, in a venv of its own).
packages=(libopencv-dev clang libclang-dev pkg-config nats-server ffmpeg protobuf-compiler opencv-doc chromium openssl
          podman runc podman-compose mmdebstrap python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # The downloaded .debs are ~400 MB the build needs more than apt does.
  $SUDO apt-get clean
fi

# 2. ONNX Runtime's shared library, from the pinned PyPI wheel (no other download is possible
#    here, and the wheel is the official CPU build).
if [ ! -e "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  say "fetching onnxruntime $ORT_VERSION from PyPI"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp" "$ORT_DIR" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime") and ".so" in base:
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
PY
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"

# 3. The model must be the one the parity fixtures were made with.
model="$ROOT/models/yolo11n-pose.onnx"
if [ ! -f "$model" ]; then
  say "missing $model (it is committed to the repository)"; exit 1
fi
actual="$(sha256sum "$model" | cut -d' ' -f1)"
if [ "$actual" != "$MODEL_SHA256" ]; then
  say "model checksum mismatch: $actual, expected $MODEL_SHA256"; exit 1
fi
say "ok (onnxruntime $ORT_VERSION in .cache/onnxruntime, model verified)"
