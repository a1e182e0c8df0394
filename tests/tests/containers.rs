//! The images, built and run: `deploy/images.sh` builds them (podman, from the release binaries,
//! the base image made with mmdebstrap where no registry answers), and `deploy/compose.yaml` runs
//! the whole system under podman-compose on a network of its own: the squat clip played as a
//! camera in the capture container, two inference replicas sharing its frames, the 5-rep set and
//! the poses read over gRPC from this host (127.0.0.1, with the gateway's token), one replica
//! killed and the next play counted all the same, then everything brought down; then the same on
//! a 3-node NATS cluster (`deploy/compose.cluster.yaml`), a NATS node killed instead. And the
//! Kubernetes Deployments of `deploy/k8s/` create their pods from these images under `podman kube
//! play` (not started: podman has no cluster DNS for them to find NATS by).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pump_proto::pose_query_client::PoseQueryClient;
use pump_tests::nats::free_port;
use pump_tests::{testdata, wait_with_deadline, workspace};

/// Runs a command from the repository root with podman's settings, bounded.
fn sh(program: &str, args: &[&str], env: &[(&str, String)], within: Duration) -> Output {
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CONTAINERS_CONF", workspace().join("deploy/podman/containers.conf"))
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (apt install podman podman-compose mmdebstrap runc, or just setup)")
        });
    wait_with_deadline(child, within)
}

fn ok(out: &Output, what: &str) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what}: {text}");
    text
}

/// One compose project: its name, its variables, and what it was started with.
struct Stack {
    project: String,
    env: Vec<(&'static str, String)>,
    files: Vec<String>,
}

impl Stack {
    fn compose(&self, args: &[&str], within: Duration) -> Output {
        let mut all = vec!["-p", self.project.as_str()];
        for f in &self.files {
            all.extend(["-f", f.as_str()]);
        }
        all.extend(args);
        sh("podman-compose", &all, &self.env, within)
    }

    /// The project's containers (all states), by name.
    fn containers(&self) -> Vec<String> {
        let filter = format!("label=io.podman.compose.project={}", self.project);
        let out =
            sh("podman", &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"], &[], Duration::from_secs(30));
        ok(&out, "podman ps").lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "5"], Duration::from_secs(120));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_runs_in_containers_and_counts_the_squat_clip() {
    let out = sh("bash", &["deploy/images.sh"], &[], Duration::from_secs(1800));
    let built = ok(&out, "deploy/images.sh");
    for image in ["pump-capture", "pump-infer", "pump-sets", "pump-gateway", "pump-hook", "pump-nats"] {
        assert!(built.contains(&format!("{image}:latest")), "{image} not built: {built}");
    }

    let scratch = tempfile::tempdir().unwrap();
    let token = scratch.path().join("token");
    std::fs::write(&token, "compose-secret\n").unwrap();

    // The Kubernetes Deployments, as far as podman runs them: each creates its pod from these
    // images, with its config map, secret, probes and resources (not started: no cluster DNS here).
    let secret = "pump-gateway-token";
    // podman 4.3 takes the secret behind `secretKeyRef` as a JSON map of base64 values.
    use base64::Engine;
    let kube_secret = scratch.path().join("secret.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode("compose-secret\n");
    std::fs::write(&kube_secret, serde_json::json!({ "token": encoded }).to_string()).unwrap();
    let _ = sh("podman", &["secret", "rm", secret], &[], Duration::from_secs(30));
    let create =
        sh("podman", &["secret", "create", secret, &kube_secret.display().to_string()], &[], Duration::from_secs(30));
    ok(&create, "secret");
    let cameras_secret = "pump-cameras";
    let cameras_json = scratch.path().join("cameras.json");
    let cameras =
        base64::engine::general_purpose::STANDARD.encode("rack1=rtsp://user:password@camera-rack1.local/stream");
    std::fs::write(&cameras_json, serde_json::json!({ "cameras": cameras }).to_string()).unwrap();
    let _ = sh("podman", &["secret", "rm", cameras_secret], &[], Duration::from_secs(30));
    let create = sh(
        "podman",
        &["secret", "create", cameras_secret, &cameras_json.display().to_string()],
        &[],
        Duration::from_secs(30),
    );
    ok(&create, "cameras secret");
    for service in ["capture", "infer", "sets", "gateway", "hook"] {
        let manifest = format!("deploy/k8s/{service}.yaml");
        // What an earlier, interrupted run left goes first; what this one makes goes before any check.
        let _ = sh("podman", &["kube", "down", &manifest], &[], Duration::from_secs(60));
        let play = sh(
            "podman",
            &["kube", "play", "--start=false", "--configmap", "deploy/k8s/config.yaml", &manifest],
            &[],
            Duration::from_secs(120),
        );
        let _ = sh("podman", &["kube", "down", &manifest], &[], Duration::from_secs(60));
        let said = ok(&play, &format!("podman kube play {manifest}"));
        assert!(said.contains("Pod:"), "{manifest}: {said}");
    }
    let _ = sh("podman", &["secret", "rm", secret], &[], Duration::from_secs(30));
    let _ = sh("podman", &["secret", "rm", cameras_secret], &[], Duration::from_secs(30));
    // The camera: the squat clip, mounted into the capture container.
    let overlay = scratch.path().join("camera.yaml");
    std::fs::write(
        &overlay,
        format!(
            // Two inference replicas: podman-compose 1.0 takes `deploy.replicas`, not `--scale`.
            "services:\n  capture:\n    volumes: [\"{}:/clips:ro\"]\n  infer:\n    deploy: {{ replicas: 2 }}\n",
            testdata("squat_5reps_15fps.mp4").parent().unwrap().display()
        ),
    )
    .unwrap();
    let stack = |project: &str, files: &[&str]| Stack {
        project: format!("{project}{}", std::process::id()),
        env: vec![
            ("PUMP_NATS_IMAGE", "pump-nats:latest".into()),
            ("PUMP_CAMERAS", "gym=/clips/squat_5reps_15fps.mp4".into()),
            ("PUMP_GRPC_PORT", free_port().to_string()),
            ("PUMP_HTTP_PORT", free_port().to_string()),
            ("PUMP_GATEWAY_TOKEN_FILE", token.display().to_string()),
        ],
        files: files.iter().map(|f| f.to_string()).chain([overlay.display().to_string()]).collect(),
    };
    // One nats-server: an inference replica killed between two plays.
    let single = stack("pumptest", &["deploy/compose.yaml"]);
    counts_two_plays(&single, &["nats"], "infer").await;
    // A cluster of three (deploy/compose.cluster.yaml): a NATS node killed between two plays.
    let cluster = stack("pumpcluster", &["deploy/compose.yaml", "deploy/compose.cluster.yaml"]);
    counts_two_plays(&cluster, &["nats", "nats1", "nats2"], "nats1").await;
}

/// Brings `stack` up (its NATS `nodes`, inference twice, sets, gateway; then the camera), reads
/// the clip's 5-rep set and poses from both replicas over gRPC with the token, kills the
/// container of `victim`, plays the clip again and reads both sets, then brings it all down.
async fn counts_two_plays(stack: &Stack, nodes: &[&str], victim: &str) {
    let grpc = stack.env.iter().find(|(k, _)| *k == "PUMP_GRPC_PORT").map(|(_, v)| v.clone()).unwrap();
    // Everything but the camera first, inference twice.
    let mut services = nodes.to_vec();
    services.extend(["infer", "sets", "gateway"]);
    let mut args = vec!["up", "-d", "--no-build", "--scale", "infer=2"];
    args.extend(&services);
    ok(&stack.compose(&args, Duration::from_secs(300)), "compose up");
    let names = stack.containers();
    assert_eq!(names.iter().filter(|n| n.contains("infer")).count(), 2, "{names:?}");
    // gRPC from this host, with the token.
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}")).unwrap().connect_lazy();
    let value: tonic::metadata::MetadataValue<_> = "Bearer compose-secret".parse().unwrap();
    let mut q = PoseQueryClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", value.clone());
        Ok(req)
    });
    let lister = q.clone();
    let sets_after = |want: usize| {
        let mut q = lister.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let got = q.list_sets(pump_proto::ListSetsRequest::default()).await.map(|r| r.into_inner().sets);
                if let Ok(sets) = &got {
                    if sets.len() >= want {
                        return sets.clone();
                    }
                }
                assert!(Instant::now() < deadline, "{want} sets: {got:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    // Both replicas ready before the camera plays (each is ready once its model is warm).
    tokio::time::sleep(Duration::from_secs(5)).await;
    ok(&stack.compose(&["up", "-d", "--no-build", "capture"], Duration::from_secs(120)), "capture up");
    let sets = sets_after(1).await;
    assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5], "{sets:?}");

    // Both replicas inferred frames of the one camera (the queue group shares them).
    let history = pump_proto::StreamPosesRequest { camera: "gym".into(), from_ns: 1, wait_for_camera: false };
    let mut poses = q.stream_poses(history).await.unwrap().into_inner();
    let mut instances = BTreeSet::new();
    while let Ok(Some(Ok(p))) = tokio::time::timeout(Duration::from_secs(2), futures::StreamExt::next(&mut poses)).await
    {
        if !p.end_of_stream {
            instances.insert(p.instance);
        }
    }
    assert_eq!(instances.len(), 2, "poses came from {instances:?}");

    // One replica killed (or one NATS node): the clip played again is counted all the same.
    let victim = stack.containers().into_iter().find(|n| n.contains(&format!("_{victim}_"))).unwrap();
    ok(&sh("podman", &["kill", &victim], &[], Duration::from_secs(30)), "podman kill");
    let capture = stack.containers().into_iter().find(|n| n.contains("capture")).unwrap();
    ok(&sh("podman", &["start", &capture], &[], Duration::from_secs(30)), "podman start capture");
    let sets = sets_after(2).await;
    assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5, 5], "{sets:?}");

    // Down: nothing of the project is left.
    ok(&stack.compose(&["down", "-v", "-t", "5"], Duration::from_secs(120)), "compose down");
    assert_eq!(stack.containers(), Vec::<String>::new());
}
