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

# Build in release mode; poses, reps and sets from the sample videos, then the services over NATS.
demo: setup
    cargo build --release -p pump-cli -p pump-capture -p pump-infer -p pump-sets-service -p pump-gateway
    @echo "== pump detect on the squat fixture (first 3 frames, cut to 160 columns)" >&2
    ./target/release/pump detect --no-progress testdata/squat_5reps_15fps.mp4 | head -n 3 | cut -c1-160
    @echo "== reps and sets: pump detect on the squat fixture piped into pump sets" >&2
    ./target/release/pump detect --no-progress testdata/squat_5reps_15fps.mp4 | ./target/release/pump sets --exercise squat -
    @echo "== pump detect on {{video}}" >&2
    ./target/release/pump detect {{video}} | python3 deploy/summary.py
    @echo "== the services, through pump up: the squat clip as a live camera, then {{video}} played losslessly" >&2
    bash deploy/demo.sh {{video}}

# Benchmarks: per-stage ms and whole-video fps against Ultralytics; capture/inference decoupling over NATS;
# frame encodings against pose parity; how many live cameras one machine serves with exact sets,
# against the model's limit; the fast mode (--imgsz) judged by reps and cameras served; one
# pump-sets under 200 cameras' poses.
bench: setup bench-python
    cargo build --release --workspace --bins
    PUMP_BENCH_PYTHON={{justfile_directory()}}/.cache/bench-venv/bin/python cargo bench -p pump-cli --bench pipeline -- \
        --video {{video}} {{justfile_directory()}}/testdata/bus.jpg {{justfile_directory()}}/testdata/zidane.jpg
    cargo bench -p pump-tests --bench decoupling
    cargo bench -p pump-features --bench features
    cargo bench -p pump-cli --bench encoding
    cargo bench -p pump-tests --bench cameras
    cargo bench -p pump-tests --bench fast_mode
    cargo bench -p pump-tests --bench sets_load
    cargo bench -p pump-tests --bench replicas

# How exactly reps are counted, clip by clip (truth, count at full rate, 10/6/4 poses/s, newest
# wins), with RepCount's MAE and OBO and the exact-set rate: testdata's clips and ../shared/real,
# or the folders given (any folder of VIDEO.truth.json files with their poses). Not a test.
reps-report *DIRS: setup
    cargo build --release -p pump-cli
    PUMP_INVOCATION_DIR={{quote(invocation_directory())}} cargo bench -p pump-tests --bench reps_report -- {{DIRS}}

# The service images (pump-capture, -infer, -sets, -gateway, and pump-nats), from the release
# binaries, with podman or docker; then `docker compose -f deploy/compose.yaml up -d`.
images: setup
    bash deploy/images.sh

# The same and pump-infer-gpu (needs NVIDIA's CUDA base image and onnxruntime-gpu's libraries).
images-gpu: setup
    PUMP_IMAGES_GPU=1 bash deploy/images.sh

# Minutes of two looping live cameras through every service: memory slope per service, drops,
# sets (PUMP_SOAK_MINUTES, default 5). Not part of `just test` or `just bench`.
soak: setup
    cargo build --release --workspace --bins
    cargo bench -p pump-tests --bench soak

# The reference side of the benchmark: Ultralytics (with torch) in a venv under .cache (~3 GB, once).
bench-python:
    test -x .cache/bench-venv/bin/python || python3 -m venv .cache/bench-venv
    .cache/bench-venv/bin/python -c "import ultralytics" 2>/dev/null || .cache/bench-venv/bin/pip install --quiet ultralytics==8.4.190 onnxruntime==1.32.0 opencv-python-headless
