//! Helpers for pump's integration tests: where the built binaries and the test data are.
//!
//! `nats`: a real nats-server per test; `http`: a small client for the services' HTTP ports;
//! `browser`: headless Chromium for the preview page; `media`: frames to publish, JPEGs to read. The CLI tests run the real `pump` binary (built by `just test` before `cargo test`) on the
//! fixtures in `testdata/`, copied from the reference fixtures with their Ultralytics outputs.

use std::path::PathBuf;

pub mod bodies;
pub mod browser;
pub mod gym;
pub mod http;
pub mod media;
pub mod nats;
pub mod procs;
pub mod pump_logger;
pub mod reps;
pub mod services;
pub mod tls;
pub use nats::NatsServer;

/// Waits until `check` holds (polled every 20 ms) or `within` passes, then fails naming `what`:
/// a test waits on what it needs, not on a guess of how long that takes on a busy machine.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Returns the workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Returns a file in `testdata/`.
pub fn testdata(name: &str) -> PathBuf {
    workspace().join("testdata").join(name)
}

/// Returns the path of a workspace binary, built in the same profile as the tests.
///
/// # Panics
/// When the binary has not been built; `just test` builds it first.
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let path = target.join(profile).join(name);
    assert!(path.is_file(), "{} is missing: run `cargo build --workspace --bins` (or `just test`)", path.display());
    path
}

/// Collects a child's output (drained on a thread, so a full pipe cannot stall it) and kills
/// it if it outlives `deadline`.
///
/// # Panics
/// When the child does not finish in time.
pub fn wait_with_deadline(child: std::process::Child, deadline: std::time::Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("collect child output"),
        Err(_) => {
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("process {pid} did not finish within {deadline:?}");
        }
    }
}

/// Runs `cmd` with `input` on its standard input (written on a thread, so a child that answers
/// before reading it all cannot deadlock), bounded by `deadline`.
///
/// # Panics
/// When the command cannot start or outlives `deadline`.
pub fn run_with_input(
    mut cmd: std::process::Command,
    input: Vec<u8>,
    deadline: std::time::Duration,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_with_deadline(child, deadline);
    let _ = writer.join();
    out
}

/// Parses a JSON-lines text.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Encodes a minimal, valid ONNX model, `out = Identity(images)` over (1, 3, 64, 64): a real
/// model that is not YOLO-pose. Hand-encoded protobuf keeps the test free of Python `onnx`.
pub fn identity_onnx_model() -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    fn field_int(field: u64, v: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(v, out);
    }
    let value_info = |name: &str| {
        let mut shape = Vec::new();
        for d in [1u64, 3, 64, 64] {
            let mut dim = Vec::new();
            field_int(1, d, &mut dim);
            field_bytes(1, &dim, &mut shape);
        }
        let mut tensor = Vec::new();
        field_int(1, 1, &mut tensor); // FLOAT
        field_bytes(2, &shape, &mut tensor);
        let mut ty = Vec::new();
        field_bytes(1, &tensor, &mut ty);
        let mut vi = Vec::new();
        field_bytes(1, name.as_bytes(), &mut vi);
        field_bytes(2, &ty, &mut vi);
        vi
    };
    let mut node = Vec::new();
    field_bytes(1, b"images", &mut node);
    field_bytes(2, b"out", &mut node);
    field_bytes(4, b"Identity", &mut node);
    let mut graph = Vec::new();
    field_bytes(1, &node, &mut graph);
    field_bytes(2, b"identity", &mut graph);
    field_bytes(11, &value_info("images"), &mut graph);
    field_bytes(12, &value_info("out"), &mut graph);
    let mut opset = Vec::new();
    field_bytes(1, b"", &mut opset);
    field_int(2, 17, &mut opset);
    let mut model = Vec::new();
    field_int(1, 8, &mut model);
    field_bytes(8, &opset, &mut model);
    field_bytes(7, &graph, &mut model);
    model
}
