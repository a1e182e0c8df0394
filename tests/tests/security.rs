//! The bus is not an open door: pump against a nats-server with TLS (certificates made here, a
//! client certificate required) and one user per service with the permissions of
//! `deploy/nats-secure.conf`; tokens and NKeys; and a service the server will not have stops with
//! one line instead of waiting for ever.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pump_bus::auth::{BusAuth, Credentials};
use pump_bus::connect::{connect, BusConfig};
use pump_tests::nats::free_port;
use pump_tests::procs::{free_addr, run, wait_ready, Service};
use pump_tests::tls::Certs;
use pump_tests::{testdata, workspace, NatsServer};

/// A binary's environment.
type Env = Vec<(&'static str, String)>;

const SERVICES: [&str; 5] = ["capture", "infer", "sets", "gateway", "hook"];

/// A nats-server as `deploy/nats-secure.conf` sets it up, and what each service needs to reach it.
struct SecureBus {
    nats: NatsServer,
    certs: Certs,
    secrets: tempfile::TempDir,
}

fn password_of(service: &str) -> String {
    format!("{service}-pw-{}", std::process::id())
}

impl SecureBus {
    fn start() -> Self {
        let certs = Certs::make();
        let secrets = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("PUMP_NATS_SERVER_CERT".to_string(), certs.server_cert.display().to_string()),
            ("PUMP_NATS_SERVER_KEY".to_string(), certs.server_key.display().to_string()),
            ("PUMP_NATS_CLIENT_CA".to_string(), certs.ca.display().to_string()),
        ];
        for s in SERVICES {
            env.push((format!("PUMP_{}_NATS_PASSWORD", s.to_uppercase()), password_of(s)));
            std::fs::write(secrets.path().join(s), format!("{}\n", password_of(s))).unwrap();
        }
        let nats = NatsServer::start_with(free_port(), workspace().join("deploy/nats-secure.conf"), env);
        Self { nats, certs, secrets }
    }

    fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.nats.port())
    }

    fn password_file(&self, service: &str) -> PathBuf {
        self.secrets.path().join(service)
    }

    /// The environment of `service`'s binary: its user, its password file, the CA and its certificate.
    fn env(&self, service: &str, http: std::net::SocketAddr) -> Env {
        vec![
            ("PUMP_NATS_URL", self.url()),
            ("PUMP_NATS_USER", format!("pump-{service}")),
            ("PUMP_NATS_PASSWORD_FILE", self.password_file(service).display().to_string()),
            ("PUMP_NATS_CA", self.certs.ca.display().to_string()),
            ("PUMP_NATS_CERT", self.certs.client_cert.display().to_string()),
            ("PUMP_NATS_KEY", self.certs.client_key.display().to_string()),
            ("PUMP_HTTP_ADDR", http.to_string()),
            ("PUMP_LOG", "warn".into()),
        ]
    }

    /// A client in the test, as `service`.
    async fn client(&self, service: &str) -> async_nats::Client {
        let mut bus = BusConfig::new(self.url(), format!("test-as-{service}"));
        bus.auth = BusAuth {
            credentials: Credentials::UserPassword(format!("pump-{service}"), password_of(service)),
            ca: Some(self.certs.ca.clone()),
            client_cert: Some((self.certs.client_cert.clone(), self.certs.client_key.clone())),
            require_tls: true,
        };
        let client = tokio::time::timeout(Duration::from_secs(10), connect(&bus)).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(10), client.flush()).await.unwrap().unwrap();
        client
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_counts_over_tls_with_a_user_per_service() {
    let bus = SecureBus::start();
    let logs = tempfile::tempdir().unwrap();
    let (infer_http, sets_http, gw_http) = (free_addr(), free_addr(), free_addr());
    let infer = Service::start("pump-infer", &[], &bus.env("infer", infer_http), logs.path());
    let sets = Service::start(
        "pump-sets",
        &["--exercise", "squat", "--quiet-seconds", "4"],
        &bus.env("sets", sets_http),
        logs.path(),
    );
    let mut gw_env = bus.env("gateway", gw_http);
    let grpc = free_addr();
    gw_env.push(("PUMP_GRPC_ADDR", grpc.to_string()));
    // With its clips: an object store it keeps, and purges.
    let gateway = Service::start("pump-gateway", &["--clips"], &gw_env, logs.path());
    for (s, http) in [(&infer, infer_http), (&sets, sets_http), (&gateway, gw_http)] {
        wait_ready(s, http).await;
    }
    // `pump hook` as its own user, towards a receiver that is not there: it takes the set and
    // says it could not deliver it.
    let nowhere = format!("http://{}/api/sets", free_addr());
    let hook = Service::start("pump", &["hook", "--url", &nowhere], &bus.env("hook", free_addr()), logs.path());
    // And pump-hook logging in PUMP (a stand-in) as the same user, with the clip and the wall.
    let (pump_base, pump) = pump_tests::pump_logger::stand_in(&["Squat"]).await;
    let key = logs.path().join("pump-key");
    std::fs::write(&key, pump_tests::pump_logger::KEY).unwrap();
    let pump_args = [
        "--pump",
        pump_base.as_str(),
        "--name",
        "pump",
        "--api-key-file",
        key.to_str().unwrap(),
        "--clip-base",
        "http://gym",
    ];
    let logger = Service::start("pump-hook", &pump_args, &bus.env("hook", free_addr()), logs.path());
    let squat = testdata("squat_5reps_15fps.mp4").display().to_string();
    let out =
        run("pump-capture", vec!["--camera".into(), format!("gym={squat}")], bus.env("capture", free_addr())).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The set, read as a client of the gateway would.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
    let mut q = pump_proto::pose_query_client::PoseQueryClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let found = q.list_sets(pump_proto::ListSetsRequest::default()).await.map(|r| r.into_inner().sets);
        if let Ok(found) = found.as_ref() {
            if !found.is_empty() {
                break found.clone();
            }
        }
        assert!(Instant::now() < deadline, "no set: {found:?}\n{}\n{}", sets.log(), infer.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(found.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5]);
    let taken = || async { hook.log().contains(&format!("set {} not delivered", found[0].set_id)) };
    pump_tests::eventually("the hook to take the set", Duration::from_secs(30), taken).await;
    // Logged in PUMP, its clip linked, the bucket and the clip store within the hook's rights.
    let clip = format!("http://gym/clips/{}.avi", found[0].set_id);
    pump_tests::eventually("the set in PUMP with its clip", Duration::from_secs(60), || async {
        pump.lock().unwrap().sets.first().is_some_and(|s| s.2.as_deref() == Some(clip.as_str()))
    })
    .await;
    for s in [infer, sets, gateway, hook, logger] {
        let log = s.stop().await;
        assert!(!log.contains("Permissions Violation") && !log.contains("permissions violation"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_may_publish_only_what_its_stage_makes() {
    let bus = SecureBus::start();
    let reader = bus.client("gateway").await;
    let mut seen = reader.subscribe("pump.>").await.unwrap();
    reader.flush().await.unwrap();
    let attempts = [
        ("capture", "pump.poses.fake", false),
        ("capture", "pump.sets.fake", false),
        ("infer", "pump.sets.fake", false),
        ("infer", "pump.frames.fake", false),
        ("gateway", "pump.poses.fake", false),
        ("sets", "pump.frames.fake", false),
        ("capture", "pump.frames.real", true),
        ("infer", "pump.poses.real", true),
        ("sets", "pump.reps.real", true),
    ];
    for (service, subject, _) in attempts {
        let c = bus.client(service).await;
        c.publish(subject, format!("{service} on {subject}").into()).await.unwrap();
        let _ = c.flush().await;
    }
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), seen.next()).await {
        got.push(String::from_utf8_lossy(&m.payload).to_string());
    }
    got.sort();
    let mut want: Vec<String> =
        attempts.iter().filter(|a| a.2).map(|(service, subject, _)| format!("{service} on {subject}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_the_server_refuses_stops_with_one_line() {
    let bus = SecureBus::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let mut cases: Vec<(&str, Env, &str)> = Vec::new();
    let mut env = bus.env("sets", free_addr());
    env.retain(|(k, _)| *k != "PUMP_NATS_PASSWORD_FILE");
    env.push(("PUMP_NATS_PASSWORD_FILE", wrong.display().to_string()));
    cases.push(("a wrong password", env, "authorization violation"));
    let mut env = bus.env("sets", free_addr());
    env.retain(|(k, _)| *k != "PUMP_NATS_CA");
    cases.push(("no CA for the server's certificate", env, "PUMP_NATS_CA"));
    let mut env = bus.env("sets", free_addr());
    env.retain(|(k, _)| *k != "PUMP_NATS_PASSWORD_FILE");
    cases.push(("a user without a password", env, "has no password"));
    for (what, env, says) in cases {
        let t0 = Instant::now();
        let out = run("pump-sets", vec!["--exercise".into(), "squat".into()], env).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 64)), "{what}: {:?} {stderr}", out.status);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("pump-sets:")).collect();
        assert_eq!(lines.len(), 1, "{what}: {stderr}");
        assert!(lines[0].contains(says), "{what}: {stderr}");
        assert!(!stderr.contains(&password_of("sets")), "{what}: {stderr}");
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}: took {:?}", t0.elapsed());
    }
}

/// A server with `authorization` as given, TLS off.
fn server_with(authorization: &str, env: Vec<(String, String)>) -> (NatsServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // nats-server reads includes relative to the including file.
    std::fs::copy(workspace().join("deploy/nats.conf"), dir.path().join("nats.conf")).unwrap();
    let conf = dir.path().join("server.conf");
    std::fs::write(&conf, format!("include \"nats.conf\"\nauthorization {{ {authorization} }}\n")).unwrap();
    (NatsServer::start_with(free_port(), conf, env), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_nkeys_from_files_or_the_environment() {
    // A token, from the environment, then from a file.
    let (nats, dir) = server_with("token: $T", vec![("T".into(), "gym-token".into())]);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "gym-token\n").unwrap();
    for secret in
        [("PUMP_NATS_TOKEN", "gym-token".to_string()), ("PUMP_NATS_TOKEN_FILE", token_file.display().to_string())]
    {
        let http = free_addr();
        let env = vec![("PUMP_NATS_URL", nats.url()), ("PUMP_HTTP_ADDR", http.to_string()), secret.clone()];
        let sets = Service::start("pump-sets", &["--exercise", "squat"], &env, dir.path());
        wait_ready(&sets, http).await;
        sets.stop().await;
    }
    let env = vec![("PUMP_NATS_URL", nats.url()), ("PUMP_NATS_TOKEN", "guess".into())];
    let out = run("pump-sets", vec![], env).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // pump's own listener too: the reason, not a silent wait.
    let env = vec![("PUMP_NATS_URL", nats.url()), ("PUMP_NATS_TOKEN", "guess".into())];
    let out = run("pump", vec!["listen".into()], env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && stderr.contains("authorization violation"), "{stderr}");

    // An NKey: the server knows the public key, the service reads the seed from a file.
    let user = nkeys::KeyPair::new_user();
    let (nats, dir) = server_with(&format!("users: [ {{ nkey: {} }} ]", user.public_key()), vec![]);
    let seed = dir.path().join("seed");
    std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
    let http = free_addr();
    let env = vec![
        ("PUMP_NATS_URL", nats.url()),
        ("PUMP_HTTP_ADDR", http.to_string()),
        ("PUMP_NATS_NKEY_FILE", seed.display().to_string()),
    ];
    let sets = Service::start("pump-sets", &["--exercise", "squat"], &env, dir.path());
    wait_ready(&sets, http).await;
    sets.stop().await;
    let other = nkeys::KeyPair::new_user();
    std::fs::write(&seed, other.seed().unwrap()).unwrap();
    let env = vec![("PUMP_NATS_URL", nats.url()), ("PUMP_NATS_NKEY_FILE", seed.display().to_string())];
    let out = run("pump-sets", vec![], env).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_wants_its_token_over_tls_and_leaves_health_open() {
    use prost::Message;
    use pump_proto::pose_query_client::PoseQueryClient;
    use pump_tests::http::{get_with, Ask};
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let nats = NatsServer::start();
    let certs = Certs::make();
    let logs = tempfile::tempdir().unwrap();
    let token_file = logs.path().join("token");
    std::fs::write(&token_file, "gym-secret\n").unwrap();
    let (grpc, http) = (free_addr(), free_addr());
    let env = vec![
        ("PUMP_NATS_URL", nats.url()),
        ("PUMP_GRPC_ADDR", grpc.to_string()),
        ("PUMP_HTTP_ADDR", http.to_string()),
        ("PUMP_AUTH_TOKEN_FILE", token_file.display().to_string()),
        ("PUMP_TLS_CERT", certs.server_cert.display().to_string()),
        ("PUMP_TLS_KEY", certs.server_key.display().to_string()),
        ("PUMP_LOG", "warn".into()),
    ];
    let gateway = Service::start("pump-gateway", &[], &env, logs.path());
    let tls = Ask { headers: &[], tls_ca: Some(&certs.ca) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(http).await.is_err() || get_with(http, "/readyz", tls).await.status != 200 {
        assert!(Instant::now() < deadline, "gateway not ready: {}", gateway.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A camera to ask about.
    let c = pump_tests::services::client(&nats, "camera").await;
    let frame = pump_proto::Frame {
        camera: "gym".into(),
        frame_id: 1,
        capture_ts_ns: pump_bus::clock::now_ns(),
        width: 4,
        height: 4,
        encoding: pump_proto::Encoding::Bgr8 as i32,
        data: vec![9; 48].into(),
        ..Default::default()
    };
    c.publish("pump.frames.gym", frame.encode_to_vec().into()).await.unwrap();
    c.flush().await.unwrap();

    // gRPC: TLS, then the token for everything but health.
    let ca = Certificate::from_pem(std::fs::read(&certs.ca).unwrap());
    let channel = Channel::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = PoseQueryClient::new(channel.clone()).list_cameras(pump_proto::ListCamerasRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    for (token, ok) in [("Bearer wrong", false), ("gym-secret", false), ("Bearer gym-secret", true)] {
        let value: tonic::metadata::MetadataValue<_> = token.parse().unwrap();
        let mut q = PoseQueryClient::with_interceptor(channel.clone(), move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", value.clone());
            Ok(req)
        });
        let r = q.list_cameras(pump_proto::ListCamerasRequest {}).await;
        assert_eq!(r.is_ok(), ok, "{token}: {r:?}");
        if let Ok(r) = r {
            assert_eq!(r.into_inner().cameras[0].camera, "gym");
        }
    }
    // Health needs no token. (gRPC health follows the bus on a quarter-second tick: it may say
    // SERVING a moment after /readyz.)
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    pump_tests::eventually("gRPC health SERVING, without a token", Duration::from_secs(5), || {
        let mut health = health.clone();
        async move {
            let status = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
            status.into_inner().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        }
    })
    .await;
    // Plain text to the TLS port gets nowhere.
    let plain = Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await;
    if let Ok(plain) = plain {
        assert!(PoseQueryClient::new(plain).list_cameras(pump_proto::ListCamerasRequest {}).await.is_err());
    }

    // HTTP: health and metrics open; the preview, snapshots and API want the token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get_with(http, path, tls).await.status, 200, "{path}");
    }
    for path in ["/", "/api/cameras", "/cameras/gym/snapshot.jpg"] {
        assert_eq!(get_with(http, path, tls).await.status, 401, "{path}");
        let wrong = Ask { headers: &[("Authorization", "Bearer nope")], ..tls };
        assert_eq!(get_with(http, path, wrong).await.status, 401, "{path}");
        let right = Ask { headers: &[("Authorization", "Bearer gym-secret")], ..tls };
        assert_eq!(get_with(http, path, right).await.status, 200, "{path}");
    }
    // A browser: one visit with ?token= sets the cookie the page's own requests then carry.
    let visit = get_with(http, "/?token=gym-secret", tls).await;
    assert_eq!(visit.status, 303);
    assert_eq!(visit.header("location"), Some("/"));
    let cookie = visit.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert!(visit.header("set-cookie").unwrap().contains("HttpOnly; SameSite=Strict; Path=/; Secure"));
    let with_cookie = Ask { headers: &[("Cookie", &cookie)], ..tls };
    assert_eq!(get_with(http, "/cameras/gym/snapshot.jpg", with_cookie).await.status, 200);
    // The cookie is a session, not the token: a leaked cookie opens neither gRPC nor a forged
    // session, and the token itself is no cookie.
    let session = cookie.split_once('=').unwrap().1.to_string();
    assert!(!session.contains("gym-secret") && visit.header("set-cookie").unwrap().contains("Max-Age="), "{cookie}");
    let as_token_cookie = Ask { headers: &[("Cookie", "pump_session=gym-secret")], ..tls };
    assert_eq!(get_with(http, "/cameras/gym/snapshot.jpg", as_token_cookie).await.status, 401);
    let (expiry, tag) = session.split_once('.').unwrap();
    let later = format!("pump_session={}.{tag}", expiry.parse::<u64>().unwrap() + 3600);
    let forged = Ask { headers: &[("Cookie", &later)], ..tls };
    assert_eq!(get_with(http, "/cameras/gym/snapshot.jpg", forged).await.status, 401, "a session made longer");
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {session}").parse().unwrap();
    let mut q = PoseQueryClient::with_interceptor(channel.clone(), move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", value.clone());
        Ok(req)
    });
    let r = q.list_cameras(pump_proto::ListCamerasRequest {}).await;
    assert_eq!(r.map_err(|e| e.code()).err(), Some(tonic::Code::Unauthenticated), "the session as a gRPC token");
    assert_eq!(get_with(http, "/?token=guess", tls).await.status, 401);
    // pump's own client: the CA and the token from files.
    let ca_flag = vec![
        "cameras".to_string(),
        "--grpc-addr".into(),
        grpc.to_string(),
        "--tls-ca".into(),
        certs.ca.display().to_string(),
    ];
    let out = run("pump", ca_flag.clone(), vec![("PUMP_AUTH_TOKEN_FILE", token_file.display().to_string())]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("gym"));
    let out = run("pump", ca_flag, vec![]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("token"), "{stderr}");
    let log = gateway.stop().await;
    assert!(!log.contains("gym-secret"), "{log}");

    // Reachable from other machines with no token: refused at start, in one line.
    let open = vec![("PUMP_NATS_URL", nats.url()), ("PUMP_GRPC_ADDR", format!("0.0.0.0:{}", free_port()))];
    let out = run("pump-gateway", vec![], open).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("reachable from other machines") && stderr.lines().count() == 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_may_call_only_the_jetstream_api_its_stage_calls_and_read_only_its_replies() {
    use async_nats::jetstream;
    let bus = SecureBus::start();
    // The streams and pump-sets' consumer, as a running pipeline has them.
    let sets = bus.client("sets").await;
    let js = jetstream::new(sets.clone());
    pump_bus::streams::ensure_streams(&js, &Default::default()).await.unwrap();
    let durable = jetstream::consumer::pull::Config {
        durable_name: Some("pump-sets".into()),
        filter_subject: "pump.poses.>".into(),
        ..Default::default()
    };
    let poses = js.get_stream(pump_bus::streams::POSES_STREAM).await.unwrap();
    poses.get_or_create_consumer::<jetstream::consumer::pull::Config>("pump-sets", durable).await.unwrap();
    // Capture's user, the one that parses untrusted camera streams: its own calls work.
    let capture = bus.client("capture").await;
    let cjs = jetstream::new(capture.clone());
    let mut frames = cjs.get_stream(pump_bus::streams::FRAMES_STREAM).await.unwrap();
    assert!(frames.info().await.is_ok(), "capture reads its stream's info (on its own inbox)");
    // It may not shrink the sets stream to one message, nor delete pump-sets' consumer.
    let mut sets_stream = js.get_stream(pump_bus::streams::SETS_STREAM).await.unwrap();
    let before = sets_stream.info().await.unwrap().config.clone();
    let shrunk = jetstream::stream::Config { max_messages: 1, ..before.clone() };
    let update = tokio::time::timeout(Duration::from_secs(10), cjs.update_stream(&shrunk)).await;
    assert!(!matches!(update, Ok(Ok(_))), "capture updated PUMP_SETS");
    let delete = tokio::time::timeout(
        Duration::from_secs(10),
        cjs.delete_consumer_from_stream("pump-sets", pump_bus::streams::POSES_STREAM),
    )
    .await;
    assert!(!matches!(delete, Ok(Ok(_))), "capture deleted pump-sets' consumer");
    assert_eq!(sets_stream.info().await.unwrap().config.max_messages, before.max_messages);
    let poses = js.get_stream(pump_bus::streams::POSES_STREAM).await.unwrap();
    assert!(poses.consumer_info("pump-sets").await.is_ok(), "pump-sets' consumer is still there");
    // Nor read pump-sets' replies: the server's answer to a JetStream call of pump-sets.
    let mut spy = capture.subscribe("_INBOX_pump-sets.>").await.unwrap();
    let _ = capture.flush().await;
    assert!(sets_stream.info().await.is_ok());
    let got = tokio::time::timeout(Duration::from_millis(1500), spy.next()).await;
    assert!(!matches!(got, Ok(Some(_))), "capture read pump-sets' replies");
}

/// An HTTPS file server (Python's) on `port`, serving `dir` with `certs`' server certificate.
fn https_files(dir: &std::path::Path, port: u16, certs: &Certs) -> std::process::Child {
    let serve = "import http.server, ssl, sys, functools\n\
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[4])\n\
        s = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), handler)\n\
        s.socket = ctx.wrap_socket(s.socket, server_side=True)\n\
        s.serve_forever()\n";
    let child = std::process::Command::new("python3")
        .args(["-c", serve, &port.to_string()])
        .arg(&certs.server_cert)
        .arg(&certs.server_key)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTPS file server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// FFmpeg opened https cameras without verifying them (and rtsps cannot be verified by it at
/// all): anyone on the camera network could feed capture's decoders. Now an https camera's
/// certificate must chain to the system's CAs or `--camera-ca-file`, and rtsps needs
/// `--camera-tls-insecure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_camera_is_opened_only_with_a_certificate_pump_trusts() {
    let certs = Certs::make();
    let files = tempfile::tempdir().unwrap();
    // A camera's MJPEG, as a file read front to back (an mp4's index is at its end, which the
    // file server's lack of ranges would hide).
    let bus = std::fs::read(testdata("bus.jpg")).unwrap();
    let avi = pump_gateway::avi::mjpeg_avi(&vec![bus; 150], 810, 1080, 15.0).unwrap();
    std::fs::write(files.path().join("cam.avi"), avi).unwrap();
    let port = free_port();
    let mut server = https_files(files.path(), port, &certs);
    let nats = NatsServer::start();
    let c = pump_tests::services::client(&nats, "watcher").await;
    let logs = tempfile::tempdir().unwrap();
    let camera = format!("cam=https://localhost:{port}/cam.avi");
    let frames_with = |args: Vec<String>| {
        let (c, nats_url, logs, camera) = (c.clone(), nats.url(), logs.path().to_path_buf(), camera.clone());
        async move {
            let mut frames = c.subscribe("pump.frames.cam").await.unwrap();
            c.flush().await.unwrap();
            let env = [("PUMP_NATS_URL", nats_url), ("PUMP_HTTP_ADDR", free_addr().to_string())];
            let mut all = vec!["--camera".to_string(), camera];
            all.extend(args);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let capture = Service::start("pump-capture", &all, &env, &logs);
            let got = tokio::time::timeout(Duration::from_secs(8), frames.next()).await.is_ok();
            (got, capture.stop().await)
        }
    };
    let (got, log) = frames_with(vec![]).await;
    assert!(!got, "a camera whose certificate no CA it trusts signed was opened: {log}");
    let ca = vec!["--camera-ca-file".to_string(), certs.ca.display().to_string()];
    let (got, log) = frames_with(ca).await;
    assert!(got, "the camera's CA given, no frame: {log}");
    let (got, log) = frames_with(vec!["--camera-tls-insecure".into()]).await;
    assert!(got && log.contains("not verified"), "accepted unverified, and said so: {log}");
    // rtsps: refused at start, in one line, unless accepted unverified.
    let rtsps = vec!["--camera".to_string(), "cam=rtsps://localhost:1/x".into()];
    let out = run("pump-capture", rtsps, vec![("PUMP_NATS_URL", nats.url())]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--camera-tls-insecure") && stderr.lines().count() == 1, "{stderr}");
    let _ = server.kill();
    let _ = server.wait();
}
