//! What can go stale in the container files without anyone noticing (`containers.rs` builds and
//! runs them): each Dockerfile ships and runs a real binary, as a user, with only files the build
//! context lets through, sets only environment variables that binary reads, opens its ops port to
//! the outside on the port the binary defaults to and probes it; compose runs every service image.
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

#[test]
fn dockerfiles_ship_and_configure_real_binaries() {
    let dir = workspace().join("deploy/docker");
    let allowed: Vec<String> = std::fs::read_to_string(workspace().join(".containerignore"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(str::to_string)
        .collect();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("Dockerfile.") || name == "Dockerfile.nats" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let shipped = text
            .lines()
            .find_map(|l| l.strip_prefix("COPY target/images/"))
            .map(|rest| rest.split_whitespace().next().unwrap().rsplit('/').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} ships no release binary"));
        let flags = env_flags(&shipped);
        assert!(text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{shipped}\"]")), "{name} runs {shipped}");
        // Every source is in the build context (.containerignore lets it through) and, unless
        // built (target/, .cache/), in the repository.
        for source in text.lines().filter_map(|l| l.strip_prefix("COPY ")) {
            let source = source.split_whitespace().next().unwrap();
            assert!(
                allowed.iter().any(|a| source.starts_with(a.as_str())),
                "{name}: .containerignore keeps out {source}"
            );
            if !source.starts_with("target/") && !source.starts_with(".cache/") {
                assert!(workspace().join(source).exists(), "{name}: COPY {source} is not in the repository");
            }
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
        assert!(
            text.contains(&format!("CMD [\"/usr/local/bin/pump-readyz\", \"{port}\"]")),
            "{name}: HEALTHCHECK on {port}"
        );
        assert!(text.contains("\nUSER pump\n"), "{name} runs as root");
        checked += 1;
    }
    assert_eq!(checked, 6, "capture, infer, infer-gpu, sets, gateway, hook");
    // The GPU image's binary is built with a feature pump-infer has.
    let script = std::fs::read_to_string(workspace().join("deploy/images.sh")).unwrap();
    assert!(script.contains("--features cuda -p pump-infer"), "deploy/images.sh builds no CUDA pump-infer");
    let manifest = std::fs::read_to_string(workspace().join("crates/infer/Cargo.toml")).unwrap();
    assert!(manifest.contains("\ncuda = "), "pump-infer has no cuda feature");
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
    // The PUMP logger's hook: its own file, read-only, no capabilities, variables it reads.
    let pump = std::fs::read_to_string(workspace().join("deploy/compose.pump.yaml")).unwrap();
    let flags = env_flags("pump-hook");
    let services = pump.split("\nservices:").nth(1).unwrap();
    for key in services.split_whitespace().filter(|w| w.starts_with("PUMP_HOOK_") || w.starts_with("PUMP_NATS")) {
        let key = key.trim_end_matches(':');
        assert!(flags.iter().any(|(f, _)| f == key), "compose.pump.yaml: pump-hook reads no {key}");
    }
    assert!(pump.contains("dockerfile: deploy/docker/Dockerfile.hook"), "compose.pump.yaml builds pump-hook");
    for line in ["read_only: true", "cap_drop: [ALL]", "no-new-privileges"] {
        assert!(pump.contains(line), "compose.pump.yaml's hook lacks {line}");
    }
}

#[test]
fn compose_runs_every_pump_service_read_only_without_capabilities() {
    let compose = std::fs::read_to_string(workspace().join("deploy/compose.yaml")).unwrap();
    let hardened = compose.split("x-hardened: &hardened").nth(1).unwrap().split("services:").next().unwrap();
    for line in ["read_only: true", "cap_drop: [ALL]", "no-new-privileges"] {
        assert!(hardened.contains(line), "x-hardened lacks {line}");
    }
    for service in ["capture", "infer", "sets", "gateway"] {
        let block = compose.split(&format!("\n  {service}:\n")).nth(1).unwrap();
        assert!(block.trim_start().starts_with("<<: *hardened"), "{service} is not hardened");
    }
}

#[test]
fn kubernetes_manifests_probe_limit_and_place_every_service() {
    let dir = workspace().join("deploy/k8s");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    for (file, image, port) in [
        ("capture.yaml", "pump-capture", "9101"),
        ("infer.yaml", "pump-infer", "9102"),
        ("infer-gpu.yaml", "pump-infer-gpu", "9102"),
        ("sets.yaml", "pump-sets", "9103"),
        ("gateway.yaml", "pump-gateway", "9104"),
        ("hook.yaml", "pump-hook", "9105"),
    ] {
        let text = read(file);
        assert!(text.contains("kind: Deployment"), "{file}");
        assert!(text.contains(&format!("image: {image}:latest")), "{file}: image {image}");
        assert!(text.contains(&format!("containerPort: {port}, name: ops")), "{file}: ops port {port}");
        assert!(text.contains("livenessProbe: { httpGet: { path: /healthz, port: ops }"), "{file}: liveness");
        assert!(text.contains("readinessProbe: { httpGet: { path: /readyz, port: ops }"), "{file}: readiness");
        assert!(text.contains("requests:") && text.contains("limits:"), "{file}: resources");
        assert!(text.contains("PUMP_CONFIG"), "{file}: reads the config map");
        // Capture parses untrusted camera streams in FFmpeg: no service may write its image,
        // gain privileges or keep a capability.
        for hardened in [
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "allowPrivilegeEscalation: false",
            "capabilities: { drop: [ALL] }",
            "seccompProfile: { type: RuntimeDefault }",
        ] {
            assert!(text.contains(hardened), "{file}: securityContext lacks {hardened}");
        }
        assert!(text.contains("{ name: tmp, mountPath: /tmp }") && text.contains("emptyDir"), "{file}: scratch /tmp");
    }
    let gpu = read("infer-gpu.yaml");
    assert!(gpu.contains("nvidia.com/gpu: 1") && gpu.contains("nodeSelector"), "GPU variant");
    let nats = read("nats.yaml");
    assert!(nats.contains("kind: StatefulSet") && nats.contains("volumeClaimTemplates") && nats.contains("-js"));
    // Three nodes clustered, each syncing every write: the cluster config, inline.
    assert!(nats.contains("replicas: 3") && nats.contains("cluster {") && nats.contains("sync_interval: always"));
    for i in 0..3 {
        assert!(nats.contains(&format!("nats-route://nats-{i}.nats-cluster:6222")), "route to node {i}");
    }
    let cluster_conf = std::fs::read_to_string(workspace().join("deploy/nats-cluster.conf")).unwrap();
    let conf_lines = |text: &str| -> Vec<String> {
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
    };
    let inline = nats.split("pump.conf: |").nth(1).unwrap().split("\n---").next().unwrap();
    assert_eq!(conf_lines(inline), conf_lines(&cluster_conf), "nats.yaml's config is deploy/nats-cluster.conf");
    assert!(read("hpa.yaml").contains("name: pump-infer") && read("sets.yaml").contains("type: Recreate"));
    assert!(
        read("gateway.yaml").contains("name: PUMP_AUTH_TOKEN, valueFrom: { secretKeyRef"),
        "the gateway wants its token"
    );
    // Camera URLs carry passwords: capture takes them from a Secret, the config map has none.
    assert!(
        read("capture.yaml").contains("name: PUMP_CAMERAS, valueFrom: { secretKeyRef: { name: pump-cameras"),
        "capture's cameras from a Secret"
    );
    // The config map is a config every service reads.
    let config = read("config.yaml");
    assert!(!config.lines().any(|l| l.trim_start().starts_with("source")), "a camera source in the config map");
    let toml = config.split("pump.toml: |").nth(1).unwrap();
    let toml: String = toml.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    for table in ["capture", "infer", "sets", "gateway", "hook"] {
        let settings =
            pump_bus::config::settings(&toml, table).unwrap_or_else(|e| panic!("config.yaml for {table}: {e}"));
        let get = |k: &str| settings.values.get(k).map(|v| v.join(","));
        // Every service on the three nodes, every stream on three.
        assert_eq!(get("PUMP_NATS_URL").map(|u| u.split(',').count()), Some(3), "{table}: {:?}", settings.values);
        assert_eq!(get("PUMP_STREAMS_REPLICAS").as_deref(), Some("3"), "{table}: {:?}", settings.values);
    }
}

/// `deploy/pump.toml` says it shows every key: each variable a service reads (`[env: PUMP_X]` in
/// its `--help`) is there as a key, set or commented, and every set key is one the service has.
#[test]
fn pump_toml_shows_every_key_of_every_service() {
    let toml = std::fs::read_to_string(workspace().join("deploy/pump.toml")).unwrap();
    let has = |key: &str| toml.lines().any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{key} =")));
    // Variables a camera's table or [streams] sets, under another name.
    let named = |var: &str| match var {
        "CAMERAS" => "source",
        "CAMERA_ENCODING" => "encoding",
        "CAMERA_REALTIME" => "realtime",
        "CAMERA_EXERCISE" => "exercise",
        "ZONE" => "zone",
        "STREAMS_REPLICAS" => "replicas",
        _ => "",
    };
    let mut missing = Vec::new();
    let config = workspace().join("deploy/pump.toml").display().to_string();
    for service in ["pump-capture", "pump-infer", "pump-sets", "pump-gateway", "pump-hook", "pump hook"] {
        let (bin, first) = service.split_once(' ').map_or((service, None), |(b, s)| (b, Some(s)));
        let out = std::process::Command::new(pump_tests::bin(bin))
            .args(first)
            .args(["--config", &config, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{service} refuses deploy/pump.toml: {}", String::from_utf8_lossy(&out.stderr));
        for var in help.split("[env: PUMP_").skip(1).filter_map(|r| r.split('=').next()) {
            if var == "CONFIG" {
                continue;
            }
            // `[hook] pump` is PUMP_HOOK_PUMP.
            let var = if service.contains("hook") { var.trim_start_matches("HOOK_") } else { var };
            let key = match named(var) {
                "" => var.to_ascii_lowercase(),
                k => k.to_string(),
            };
            if !has(&key) {
                missing.push(format!("{service}: {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "keys deploy/pump.toml lacks: {missing:?}");
}
