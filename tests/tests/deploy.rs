//! The container files cannot be built here (no Docker engine), so this checks what can go stale
//! without anyone noticing: each Dockerfile builds a real package, ships and runs a real binary,
//! sets only environment variables that binary reads, and opens its ops port to the outside on
//! the port the binary defaults to; compose runs every service image.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::process::Command;

use pump_tests::{bin, workspace};

/// Each `PUMP_*` variable the binary reads, with its default (as `--help` shows them).
fn env_flags(binary: &str) -> Vec<(String, Option<String>)> {
    let out = Command::new(bin(binary)).arg("--help").env_clear().output().unwrap();
    assert!(out.status.success(), "{binary} --help");
    let help = String::from_utf8(out.stdout).unwrap();
    help.split("[env: ")
        .skip(1)
        .map(|rest| {
            let name = rest.split('=').next().unwrap().to_string();
            let default = rest
                .split_once("[default: ")
                .filter(|(before, _)| !before.contains('\n'))
                .map(|(_, after)| after.split(']').next().unwrap().to_string());
            (name, default)
        })
        .collect()
}

/// `NAME=value` pairs of every `ENV` line.
fn env_lines(dockerfile: &str) -> Vec<(String, String)> {
    dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Each workspace crate's package name and manifest.
fn manifests() -> Vec<(String, String)> {
    std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .filter_map(|d| std::fs::read_to_string(d.unwrap().path().join("Cargo.toml")).ok())
        .filter_map(|toml| {
            let line = toml.lines().find(|l| l.starts_with("name = "))?;
            Some((line.trim_start_matches("name = ").trim_matches('"').to_string(), toml))
        })
        .collect()
}

#[test]
fn dockerfiles_build_ship_and_configure_real_binaries() {
    let dir = workspace().join("deploy/docker");
    let manifests = manifests();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();

        let build = text.lines().find_map(|l| l.split("cargo build --release -p ").nth(1)).unwrap();
        let package = build.split_whitespace().next().unwrap();
        let (_, manifest) = manifests
            .iter()
            .find(|(p, _)| p == package)
            .unwrap_or_else(|| panic!("{name}: no package {package} in crates/"));
        if let Some(features) = build.split("--features ").nth(1) {
            let feature = features.split_whitespace().next().unwrap();
            assert!(manifest.contains(&format!("\n{feature} = ")), "{name}: {package} has no feature {feature}");
        }

        let shipped = text
            .lines()
            .find_map(|l| l.strip_prefix("COPY --from=build /src/target/release/"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let flags = env_flags(shipped);
        assert!(text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{shipped}\"]")), "{name} runs {shipped}");
        for source in text.lines().filter_map(|l| l.strip_prefix("COPY ")).filter(|l| !l.starts_with("--from")) {
            let source = source.split_whitespace().next().unwrap();
            assert!(workspace().join(source).exists(), "{name}: COPY {source} is not in the repository");
        }

        let env = env_lines(&text);
        for (key, _) in &env {
            assert!(flags.iter().any(|(f, _)| f == key), "{name}: {shipped} reads no {key}");
        }
        let http = &env.iter().find(|(k, _)| k == "PUMP_HTTP_ADDR").unwrap().1;
        let port = http.strip_prefix("0.0.0.0:").unwrap_or_else(|| panic!("{name}: ops port on {http}, not 0.0.0.0"));
        let default = flags.iter().find(|(f, _)| f == "PUMP_HTTP_ADDR").unwrap().1.clone().unwrap();
        assert_eq!(default, format!("127.0.0.1:{port}"), "{name}: the binary's own port");
        let exposed = text.lines().find_map(|l| l.strip_prefix("EXPOSE ")).unwrap();
        assert!(exposed.split_whitespace().any(|p| p == port), "{name}: EXPOSE {exposed} lacks {port}");
        checked += 1;
    }
    assert_eq!(checked, 5, "capture, infer, infer-gpu, sets, gateway");
}

#[test]
fn compose_runs_every_service_image_with_variables_they_read() {
    let compose = std::fs::read_to_string(workspace().join("deploy/compose.yaml")).unwrap();
    let mut images = BTreeSet::new();
    // Each service block: its Dockerfile and the PUMP_* keys of its environment.
    for block in compose.split("\n  ").filter(|b| b.contains("dockerfile: ")) {
        let dockerfile = block.split("dockerfile: ").nth(1).unwrap().split([' ', '}']).next().unwrap();
        let text = std::fs::read_to_string(workspace().join(dockerfile)).unwrap();
        let shipped = text.lines().find_map(|l| l.strip_prefix("ENTRYPOINT [\"/usr/local/bin/")).unwrap();
        let flags = env_flags(shipped.trim_end_matches("\"]"));
        for key in block.split_whitespace().filter(|w| w.starts_with("PUMP_")) {
            let key = key.trim_end_matches(':');
            assert!(flags.iter().any(|(f, _)| f == key), "{dockerfile}: reads no {key}");
        }
        images.insert(dockerfile.trim_start_matches("deploy/docker/").to_string());
    }
    let want: BTreeSet<String> =
        ["capture", "infer", "sets", "gateway"].iter().map(|s| format!("Dockerfile.{s}")).collect();
    assert_eq!(images, want, "one service per stage; the GPU image is for GPU hosts");
}
