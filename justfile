# pump — `just demo` to see it work, `just test` to check it.

set shell := ["bash", "-euo", "pipefail", "-c"]

video := "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

# Show the recipes.
default:
    @just --list

# Install what this machine lacks (Debian packages, ONNX Runtime, model check). Idempotent.
setup:
    bash deploy/setup.sh

# Build everything (debug).
build: setup
    cargo build --workspace --bins

# The whole test suite: unit tests, then the real binaries end to end.
test: setup
    cargo build --workspace --bins
    cargo test --workspace

# Lints as CI would see them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build in release mode and detect poses on the sample video.
demo: setup
    cargo build --release -p pump-cli
    @echo "pump detect on the squat fixture (first 3 frames):" >&2
    ./target/release/pump detect --no-progress testdata/squat_5reps_15fps.mp4 | head -n 3 | cut -c1-160
    @echo "pump detect on {{video}}:" >&2
    ./target/release/pump detect {{video}} | python3 deploy/summary.py

# Benchmarks: per-stage ms on the images, whole-video fps, side by side with the Python reference.
bench: setup
    cargo build --release -p pump-cli -p pump-bench
    ./target/release/pump-bench --video {{video}} testdata/bus.jpg testdata/zidane.jpg
