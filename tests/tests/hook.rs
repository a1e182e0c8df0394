//! `pump hook`: every closed set POSTed to a web service once it is taken, retried while the
//! receiver fails, reported (not retried) when it refuses, and never lost or sent twice across
//! a restart of the hook. Against a small HTTP server in the test and a real nats-server.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use pump_proto::SetEvent;
use pump_tests::procs::Service;
use pump_tests::services::client;
use pump_tests::NatsServer;
use tokio::io::AsyncWriteExt;

/// What the receiver saw: (Idempotency-Key, X-Api-Key, status it answered, the body's set id,
/// the path POSTed to).
type Seen = Arc<Mutex<Vec<(String, String, u16, String, String)>>>;

/// An HTTP receiver answering each POST with the next of `answers` (then 200), one per connection;
/// a 3xx points to `/api/moved`.
async fn receiver(answers: Vec<u16>) -> (std::net::SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let (log, answers) = (seen.clone(), Arc::new(Mutex::new(answers.into_iter())));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (log, answers) = (log.clone(), answers.clone());
            tokio::spawn(async move {
                let Some((head, body)) = pump_tests::http::read_request(&mut sock).await else { return };
                let header = |name: &str| pump_tests::http::request_header(&head, name);
                let status = answers.lock().unwrap().next().unwrap_or(200);
                let set: serde_json::Value = serde_json::from_slice(&body).unwrap();
                log.lock().unwrap().push((
                    header("idempotency-key"),
                    header("x-api-key"),
                    status,
                    set["set_id"].as_str().unwrap().to_string(),
                    head.split(' ').nth(1).unwrap_or_default().to_string(),
                ));
                let location = if (300..400).contains(&status) { "location: /api/moved\r\n" } else { "" };
                let reply = format!("HTTP/1.1 {status} X\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n");
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

async fn wait_for(seen: &Seen, n: usize) {
    pump_tests::eventually(&format!("{n} posts"), Duration::from_secs(30), || async {
        seen.lock().unwrap().len() >= n
    })
    .await;
}

/// `pump hook` with `args`, once its consumer is in place.
async fn start_hook(args: &[&str], env: &[(&str, String)], logs: &std::path::Path) -> Service {
    let hook = Service::start("pump", args, env, logs);
    let ready = || async { hook.log().contains("posting sets to") };
    pump_tests::eventually("the hook's consumer", Duration::from_secs(20), ready).await;
    hook
}

/// Stores set `rack1-N` (N reps) as pump-sets does.
async fn publish_set(js: &async_nats::jetstream::Context, n: u32) {
    let set = SetEvent { camera: "rack1".into(), set_id: format!("rack1-{n}"), reps: n, ..Default::default() };
    let m = async_nats::jetstream::message::PublishMessage::build()
        .payload(set.encode_to_vec().into())
        .message_id(&set.set_id);
    js.send_publish("pump.sets.rack1", m).await.unwrap().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_set_is_posted_once_it_is_taken_across_a_restart_of_the_hook() {
    let nats = NatsServer::start();
    let c = client(&nats, "test").await;
    let js = async_nats::jetstream::new(c.clone());
    pump_bus::streams::ensure_streams(&js, &Default::default()).await.unwrap();
    // Set 1 meets a failing receiver first; set 3 is refused (the logger's auto-logging is off).
    let (addr, seen) = receiver(vec![500, 200, 200, 403, 200]).await;
    let logs = tempfile::tempdir().unwrap();
    let key = logs.path().join("key");
    std::fs::write(&key, "s3cret\n").unwrap();
    let url = format!("http://{addr}/api/sets");
    let args = ["hook", "--url", &url, "--name", "logger", "--api-key-file", key.to_str().unwrap()];
    let env = [("PUMP_NATS_URL", nats.url())];
    let start = || start_hook(&args, &env, logs.path());
    let publish = |n: u32| publish_set(&js, n);

    let hook = start().await;
    publish(1).await;
    wait_for(&seen, 2).await;
    // Stopped, a set closes meanwhile, started again: it goes on from there.
    let log = hook.stop().await;
    assert!(log.contains("set rack1-1 not delivered (HTTP 500); again in 1s"), "{log}");
    publish(2).await;
    let hook = start().await;
    wait_for(&seen, 3).await;
    publish(3).await;
    publish(4).await;
    wait_for(&seen, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = hook.stop().await;
    assert!(log.contains("refused set rack1-3 with 403 (auto-logging is off there?); not retried"), "{log}");

    let seen = seen.lock().unwrap().clone();
    let taken: Vec<&str> = seen.iter().filter(|s| s.2 == 200).map(|s| s.3.as_str()).collect();
    assert_eq!(taken, ["rack1-1", "rack1-2", "rack1-4"], "each set taken once, in order: {seen:?}");
    assert_eq!(seen.len(), 5, "set 1 twice (500, then 200), set 3 once (403): {seen:?}");
    for (idempotency, api_key, _, set_id, _) in &seen {
        assert_eq!((idempotency, api_key.as_str()), (set_id, "s3cret"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_drops_a_set_unsaid_or_holds_up_the_rest_and_a_stop_hands_the_set_back() {
    let nats = NatsServer::start();
    let c = client(&nats, "test").await;
    let js = async_nats::jetstream::new(c.clone());
    pump_bus::streams::ensure_streams(&js, &Default::default()).await.unwrap();
    // Per set: 1 a wrong key first (401: retried, it used to be dropped); 2 too large (413:
    // set aside); 3 moved keeping the POST (307: followed); 4 moved as a GET would (302: not
    // followed, retried); 5 the receiver chokes on it (500 until it is set aside); 6 taken;
    // 7 failing while the hook is stopped.
    let answers = vec![401, 200, 413, 307, 200, 302, 200, 500, 500, 500, 200, 500, 200];
    let (addr, seen) = receiver(answers).await;
    let logs = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/api/sets");
    let args = ["hook", "--url", &url, "--name", "logger", "--set-aside-after", "2"];
    let env = [("PUMP_NATS_URL", nats.url())];
    let start = || start_hook(&args, &env, logs.path());
    let publish = |n: u32| publish_set(&js, n);
    let hook = start().await;
    for n in 1..=7 {
        publish(n).await;
    }
    wait_for(&seen, 12).await;
    // Set 7 is being tried again when the hook stops: it is handed back, and the next start
    // sends it at once (not after the 600 s acknowledgement wait).
    let log = hook.stop().await;
    assert!(log.contains("set rack1-7 handed back"), "{log}");
    assert!(log.contains("set rack1-1 not delivered (HTTP 401"), "{log}");
    assert!(log.contains("cannot take set rack1-2 (413); set aside on pump.hook.logger.aside"), "{log}");
    assert!(log.contains("HTTP 302 to /api/moved: point --url there"), "{log}");
    assert!(log.contains("set rack1-5 still not delivered after 2s (HTTP 500); set aside"), "{log}");
    let restarted = std::time::Instant::now();
    let hook = start().await;
    wait_for(&seen, 13).await;
    assert!(restarted.elapsed() < Duration::from_secs(30));
    hook.stop().await;

    let seen = seen.lock().unwrap().clone();
    let taken: Vec<(&str, &str)> = seen.iter().filter(|s| s.2 == 200).map(|s| (s.3.as_str(), s.4.as_str())).collect();
    assert_eq!(
        taken,
        [
            ("rack1-1", "/api/sets"),
            ("rack1-3", "/api/moved"),
            ("rack1-4", "/api/sets"),
            ("rack1-6", "/api/sets"),
            ("rack1-7", "/api/sets")
        ],
        "{seen:?}"
    );
    // The two it could not deliver are kept, with why.
    let mut aside = js.get_stream("PUMP_HOOK").await.unwrap();
    assert_eq!(aside.info().await.unwrap().state.messages, 2);
    let mut why = Vec::new();
    for seq in 1..=2 {
        let m = aside.get_raw_message(seq).await.unwrap();
        let set: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let header = m.headers.get("Pump-Why").map(|v| v.to_string()).unwrap_or_default();
        why.push((set["set_id"].as_str().unwrap().to_string(), header));
    }
    assert_eq!(why, [("rack1-2".to_string(), "HTTP 413".to_string()), ("rack1-5".to_string(), "HTTP 500".to_string())]);
}
