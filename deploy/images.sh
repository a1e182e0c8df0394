#!/usr/bin/env bash
# Builds pump's images (pump-capture, pump-infer, pump-sets, pump-gateway, pump-hook, and pump-nats, a
# nats-server for machines that reach no registry) from the release binaries, with podman (or
# docker when podman is absent; PUMP_CONTAINER_ENGINE chooses). `just images` runs this.
#
# The base image is debian:bookworm-slim. Where it cannot be pulled (these machines reach no
# container registry), it is made from Debian's packages: mmdebstrap --variant=minbase bookworm,
# then imported under that name (PUMP_BASE=mmdebstrap forces this; PUMP_BASE=pull never does it).
# podman runs with deploy/podman/containers.conf: nothing on the machine is configured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'images: %s\n' "$*" >&2; }

ENGINE="${PUMP_CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
[ -n "$ENGINE" ] || { say "neither podman nor docker found: apt install podman (or run just setup)"; exit 1; }
build_flags=(-q)
if [ "$(basename "$ENGINE")" = podman ]; then
  export CONTAINERS_CONF="$ROOT/deploy/podman/containers.conf"
  # HEALTHCHECK is a Docker-format instruction; podman's default OCI format drops it.
  build_flags+=(--format docker)
fi

if [ "${PUMP_IMAGES_SKIP_BUILD:-}" != 1 ]; then
  say "release binaries"
  cargo build --release -p pump-capture -p pump-infer -p pump-sets-service -p pump-gateway -p pump-hook
fi
for f in target/release/pump-capture target/release/pump-infer target/release/pump-sets target/release/pump-gateway target/release/pump-hook \
         .cache/onnxruntime/libonnxruntime.so.1.32.0 .cache/nats-server/nats-server models/yolo11n-pose.onnx; do
  [ -e "$f" ] || { say "$f is missing: run just setup, then cargo build --release --workspace --bins"; exit 1; }
done
# The binaries without their debug info (kept in target/release for profiling): a tenth the size.
mkdir -p target/images
for b in pump-capture pump-infer pump-sets pump-gateway pump-hook; do
  strip --strip-debug -o "target/images/$b" "target/release/$b"
done

base=debian:bookworm-slim
if ! "$ENGINE" image inspect "$base" >/dev/null 2>&1; then
  if [ "${PUMP_BASE:-}" != mmdebstrap ] && timeout 60 "$ENGINE" pull -q "docker.io/library/$base" >/dev/null 2>&1; then
    say "pulled $base"
  elif [ "${PUMP_BASE:-}" != pull ]; then
    command -v mmdebstrap >/dev/null || { say "cannot pull $base and mmdebstrap is missing: apt install mmdebstrap"; exit 1; }
    say "making $base with mmdebstrap (no registry): ~30 s"
    tar="$(mktemp --suffix=.tar)"
    trap 'rm -f "$tar"' EXIT
    # What Debian's slim image leaves out, for the packages the images add too: docs, man pages,
    # translations; and the package lists (each image fetches its own).
    mmdebstrap --quiet --variant=minbase \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      bookworm "$tar"
    "$ENGINE" import -q "$tar" "$base" >/dev/null
  else
    say "cannot pull $base"; exit 1
  fi
fi

services=(capture infer sets gateway hook nats)
if [ "${PUMP_IMAGES_GPU:-}" = 1 ]; then
  # pump-infer-gpu: the `cuda` build, and onnxruntime-gpu's libraries in .cache/onnxruntime-gpu/
  # (from its wheel; docs/DEPLOYMENT.md, GPU hosts). Its base image comes from NVIDIA's registry.
  cargo build --release --features cuda -p pump-infer --target-dir target/cuda
  mkdir -p target/images/cuda
  strip --strip-debug -o target/images/cuda/pump-infer target/cuda/release/pump-infer
  services+=(infer-gpu)
fi
for s in "${services[@]}"; do
  say "pump-$s"
  "$ENGINE" build "${build_flags[@]}" -f "deploy/docker/Dockerfile.$s" -t "pump-$s:latest" . >/dev/null
done
"$ENGINE" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '(^|/)pump-' | sort >&2
