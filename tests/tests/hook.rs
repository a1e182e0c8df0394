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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver saw: (Idempotency-Key, X-Api-Key, status it answered, the body's set id).
type Seen = Arc<Mutex<Vec<(String, String, u16, String)>>>;

/// An HTTP receiver answering each POST with the next of `answers` (then 200), one per connection.
async fn receiver(answers: Vec<u16>) -> (std::net::SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let (log, answers) = (seen.clone(), Arc::new(Mutex::new(answers.into_iter())));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (log, answers) = (log.clone(), answers.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let status = answers.lock().unwrap().next().unwrap_or(200);
                let set: serde_json::Value = serde_json::from_slice(&body).unwrap();
                log.lock().unwrap().push((
                    header("idempotency-key"),
                    header("x-api-key"),
                    status,
                    set["set_id"].as_str().unwrap().to_string(),
                ));
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
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
    let start = || async {
        let hook = Service::start("pump", &args, &env, logs.path());
        let ready = || async { hook.log().contains("posting sets to") };
        pump_tests::eventually("the hook's consumer", Duration::from_secs(20), ready).await;
        hook
    };
    let publish = |n: u32| {
        let (js, set) = (
            js.clone(),
            SetEvent { camera: "rack1".into(), set_id: format!("rack1-{n}"), reps: n, ..Default::default() },
        );
        async move {
            let m = async_nats::jetstream::message::PublishMessage::build()
                .payload(set.encode_to_vec().into())
                .message_id(&set.set_id);
            js.send_publish("pump.sets.rack1", m).await.unwrap().await.unwrap();
        }
    };

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
    for (idempotency, api_key, _, set_id) in &seen {
        assert_eq!((idempotency, api_key.as_str()), (set_id, "s3cret"));
    }
}
