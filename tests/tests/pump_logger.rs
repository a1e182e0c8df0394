//! `pump hook --pump`: sets logged in the PUMP workout logger in PUMP's own contract — exercise
//! names from PUMP, the gym's date, pending sets saying why, the clip linked — exactly once
//! across restarts of the hook and PUMP; a wrong key stops it, CV logging switched off keeps the
//! set. Against a stand-in of PUMP written from its contract (it refuses what PUMP would store
//! wrong) and a real nats-server.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use prost::Message;
use pump_proto::SetEvent;
use pump_tests::procs::Service;
use pump_tests::pump_logger::{stand_in, Pump, Shared, KEY};
use pump_tests::services::client;
use pump_tests::NatsServer;
use serde_json::{json, Value};

/// A real nats-server with pump's streams, a client of it, a PUMP stand-in knowing `exercises`,
/// and a folder for logs holding PUMP's key (`key`).
struct Setup {
    nats: NatsServer,
    c: async_nats::Client,
    js: async_nats::jetstream::Context,
    base: String,
    pump: Shared,
    logs: tempfile::TempDir,
    key: std::path::PathBuf,
}

async fn setup(exercises: &[&str]) -> Setup {
    let nats = NatsServer::start();
    let c = client(&nats, "test").await;
    let js = async_nats::jetstream::new(c.clone());
    pump_bus::streams::ensure_streams(&js, &Default::default()).await.unwrap();
    let (base, pump) = stand_in(exercises).await;
    let logs = tempfile::tempdir().unwrap();
    let key = logs.path().join("key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    Setup { nats, c, js, base, pump, logs, key }
}

/// 23:30 UTC on 4 December 2026, in ns: the 5th in Auckland.
const LATE_EVENING_UTC_NS: i64 = 1_796_427_000_000_000_000;

fn set(n: u32, exercise: &str, reps: u32, confidence: f32, pending: bool) -> SetEvent {
    SetEvent {
        camera: "rack1".into(),
        set_id: format!("rack1-{n}"),
        exercise: exercise.into(),
        reps,
        confidence,
        pending,
        pose_rate: 12.0,
        end_unix_ns: LATE_EVENING_UTC_NS,
        ..Default::default()
    }
}

async fn publish(js: &async_nats::jetstream::Context, s: &SetEvent) {
    let m =
        async_nats::jetstream::message::PublishMessage::build().payload(s.encode_to_vec().into()).message_id(&s.set_id);
    js.send_publish("pump.sets.rack1", m).await.unwrap().await.unwrap();
}

async fn start_hook(args: &[&str], nats: &NatsServer, logs: &std::path::Path) -> Service {
    let hook = Service::start("pump", args, &[("PUMP_NATS_URL", nats.url())], logs);
    let ready = || async { hook.log().contains("logging sets in PUMP at") };
    pump_tests::eventually("the hook's consumer", Duration::from_secs(20), ready).await;
    hook
}

async fn stored(pump: &Shared, n: usize) {
    pump_tests::eventually(&format!("{n} sets in PUMP"), Duration::from_secs(30), || async {
        pump.lock().unwrap().sets.len() >= n
    })
    .await;
}

fn posts(pump: &Shared) -> usize {
    pump.lock().unwrap().requests.iter().filter(|(m, _)| m == "POST").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_land_in_pump_once_under_its_names_on_the_gyms_date_with_their_clips() {
    let Setup { nats, js, base, pump, logs, key, .. } = setup(&["Squat", "Bicep Curl", "Other"]).await;
    let args = [
        "hook",
        "--pump",
        &base,
        "--name",
        "pump",
        "--api-key-file",
        key.to_str().unwrap(),
        "--exercise-name",
        "curl=Bicep Curl",
        "--fallback-exercise",
        "other",
        "--time-zone",
        "Pacific/Auckland",
        "--weight",
        "60",
        "--clip-base",
        "http://gym:9104",
    ];
    let hook = start_hook(&args, &nats, logs.path()).await;
    publish(&js, &set(1, "squat", 5, 0.93, false)).await;
    publish(&js, &set(2, "curl", 4, 0.88, false)).await;
    publish(&js, &set(3, "situp", 8, 0.9, false)).await;
    publish(&js, &set(4, "squat", 2, 0.6, true)).await;
    stored(&pump, 4).await;

    let sets: Vec<Value> = pump.lock().unwrap().sets.iter().map(|s| s.1.clone()).collect();
    let row = |b: &Value| {
        (b["Name"].as_str().unwrap().to_string(), b["Reps"].as_u64().unwrap(), b["Pending"].as_bool().unwrap())
    };
    let rows: Vec<_> = sets.iter().map(row).collect();
    assert_eq!(
        rows,
        [
            ("Squat".into(), 5, false),
            ("Bicep Curl".into(), 4, false),
            ("Other".into(), 8, true),
            ("Squat".into(), 2, true)
        ]
    );
    assert_eq!(
        sets[0],
        json!({"Date": "2026-12-05", "Name": "Squat", "Weight": "60.0", "Reps": 5, "Source": "cv",
               "Confidence": 0.93, "Pending": false, "Note": ""})
    );
    assert_eq!(sets[2]["Note"], "pump saw \"situp\", which PUMP does not have");
    assert_eq!(sets[3]["Note"], "to confirm: only 2 reps, unsure exercise (60 % sure)");

    // The gateway writes set 1's clip: PUMP is told where it is.
    let clips = js
        .create_object_store(async_nats::jetstream::object_store::Config {
            bucket: "pump-clips".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    clips.put("rack1-1.avi", &mut &b"RIFF"[..]).await.unwrap();
    pump_tests::eventually("set 1's ClipPath", Duration::from_secs(30), || async {
        pump.lock().unwrap().sets[0].2.as_deref() == Some("http://gym:9104/clips/rack1-1.avi")
    })
    .await;

    // A crash after PUMP took set 5 and its id was stored, before the set was acknowledged (the
    // bucket is written as the hook writes it, then the set redelivered): not posted again.
    hook.stop().await;
    let kv = js.get_key_value("pump-hook-logged").await.unwrap();
    kv.put("pump.rack1-5", json!({"id": 777, "clip": ""}).to_string().into()).await.unwrap();
    publish(&js, &set(5, "squat", 5, 0.9, false)).await;
    // PUMP restarting meanwhile: set 6 waits for it, and is logged once it is back.
    pump.lock().unwrap().down = true;
    publish(&js, &set(6, "squat", 6, 0.9, false)).await;
    let hook = start_hook(&args, &nats, logs.path()).await;
    pump_tests::eventually("a retry while PUMP is down", Duration::from_secs(30), || async {
        hook.log().contains("set rack1-6 not logged yet")
    })
    .await;
    pump.lock().unwrap().down = false;
    stored(&pump, 5).await;
    // A clip written while the hook was away is linked on its start (set 4's, written now for a
    // set logged before).
    clips.put("rack1-4.avi", &mut &b"RIFF"[..]).await.unwrap();
    pump_tests::eventually("set 4's ClipPath", Duration::from_secs(30), || async {
        pump.lock().unwrap().sets[3].2.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = hook.stop().await;
    assert!(log.contains("set rack1-5 already in PUMP as #777"), "{log}");
    assert!(log.contains("set rack1-6 not logged yet (GET /api/exercises: HTTP 503: restarting)"), "{log}");

    let p = pump.lock().unwrap();
    let reps: Vec<u64> = p.sets.iter().map(|s| s.1["Reps"].as_u64().unwrap()).collect();
    assert_eq!(reps, [5, 4, 8, 2, 6], "each set once, in order; set 5 not again");
    assert!(p.refused.is_empty(), "PUMP would have refused: {:?}", p.refused);
    let patches = p.requests.iter().filter(|(m, _)| m == "PATCH").count();
    assert_eq!(patches, 2, "each clip linked once: {:?}", p.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_stops_the_hook_and_nothing_is_lost_while_logging_off_or_a_missing_exercise_is_said() {
    let Setup { nats, js, base, pump, logs, key: right, .. } = setup(&["Squat"]).await;
    let wrong = logs.path().join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let args = |key: &std::path::Path| {
        ["hook", "--pump", &base, "--name", "pump", "--api-key-file", key.to_str().unwrap(), "--max-backoff-s", "1"]
            .map(str::to_string)
    };

    // A wrong key: one line, exit 1, the set still there for the right one.
    let wrong_args = args(&wrong);
    let wrong_args: Vec<&str> = wrong_args.iter().map(String::as_str).collect();
    let hook = Service::start("pump", &wrong_args, &[("PUMP_NATS_URL", nats.url())], logs.path());
    let (status, log) = hook.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("answers 401 unauthorized: its API key is not the one in --api-key-file"), "{log}");

    // The right key, as the pump-hook service (its ops port counts what it could not log).
    let right_args = args(&right);
    let right_args: Vec<&str> = right_args.iter().skip(1).map(String::as_str).collect();
    let ops = pump_tests::procs::free_addr();
    let env = [("PUMP_NATS_URL", nats.url()), ("PUMP_HTTP_ADDR", ops.to_string())];
    let hook = Service::start("pump-hook", &right_args, &env, logs.path());
    pump_tests::eventually("the hook's consumer", Duration::from_secs(20), || async {
        hook.log().contains("logging sets in PUMP at")
    })
    .await;
    publish(&js, &set(1, "squat", 5, 0.9, false)).await;
    stored(&pump, 1).await;

    // Auto-logging off: said, kept aside, not retried.
    pump.lock().unwrap().cv_on = false;
    let before = posts(&pump);
    publish(&js, &set(2, "squat", 5, 0.9, false)).await;
    pump_tests::eventually("the refused set", Duration::from_secs(30), || async {
        hook.log().contains("CV auto-logging is off in PUMP: set rack1-2 not logged")
    })
    .await;
    let metrics = pump_tests::http::get(ops, "/metrics").await.text();
    assert!(metrics.contains("pump_hook_sets_not_delivered_total{reason=\"declined\"} 1"), "{metrics}");
    pump.lock().unwrap().cv_on = true;
    // An exercise PUMP lacks, no fallback: held with one line until PUMP has it.
    publish(&js, &set(3, "deadlift", 5, 0.9, false)).await;
    pump_tests::eventually("the held set", Duration::from_secs(30), || async {
        hook.log().contains("PUMP has no exercise \"deadlift\" (it has: Squat)")
    })
    .await;
    pump.lock().unwrap().exercises.push("Deadlift".into());
    stored(&pump, 2).await;
    let log = hook.stop().await;
    assert_eq!(log.matches("PUMP has no exercise \"deadlift\"").count(), 1, "said once: {log}");

    {
        let p = pump.lock().unwrap();
        let names: Vec<&str> = p.sets.iter().map(|s| s.1["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Squat", "Deadlift"]);
        assert_eq!(posts_after(&p, before), 2, "set 2 once (403), set 3 once: {:?}", p.requests);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
    }
    let aside = js.get_stream("PUMP_HOOK").await.unwrap();
    let m = aside.get_raw_message(1).await.unwrap();
    assert_eq!(m.headers.get("Pump-Set-Id").map(|v| v.to_string()).as_deref(), Some("rack1-2"));
    assert_eq!(m.headers.get("Pump-Why").map(|v| v.to_string()).as_deref(), Some("CV auto-logging is off in PUMP"));
}

fn posts_after(p: &Pump, before: usize) -> usize {
    p.requests.iter().filter(|(m, _)| m == "POST").count() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_files_hook_table_sets_the_hook_up_and_a_key_it_lacks_is_one_line() {
    let Setup { nats, js, base, pump, logs: dir, key, .. } = setup(&["Back Squat", "Other"]).await;
    // Top-level keys the hook does not have (the services' own) are no error for it.
    let config = dir.path().join("pump.toml");
    let text = format!(
        "nats_url = {:?}\nlog = \"warn\"\nposes_max_age_s = 3600\n\n[streams]\nreplicas = 1\n\n[hook]\npump = {base:?}\n\
         api_key_file = {:?}\nname = \"gym\"\nexercise_name = [\"squat=Back Squat\"]\nfallback_exercise = \"Other\"\n\
         time_zone = \"America/New_York\"\n",
        nats.url(),
        key.display()
    );
    std::fs::write(&config, &text).unwrap();
    let hook = Service::start("pump", &["hook", "--config", config.to_str().unwrap()], &[], dir.path());
    pump_tests::eventually("the hook's consumer", Duration::from_secs(20), || async {
        hook.log().contains("logging sets in PUMP at")
    })
    .await;
    publish(&js, &set(1, "squat", 5, 0.9, false)).await;
    stored(&pump, 1).await;
    hook.stop().await;
    let b = pump.lock().unwrap().sets[0].1.clone();
    assert_eq!((b["Name"].as_str(), b["Date"].as_str()), (Some("Back Squat"), Some("2026-12-04")));

    std::fs::write(&config, format!("{text}colour = \"red\"\n")).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(pump_tests::bin("pump"))
            .args(["hook", "--config", config.to_str().unwrap()])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let says = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(64), "{says}");
    assert!(says.contains("[hook] colour: pump hook has no such setting (PUMP_HOOK_COLOUR)"), "{says}");
    // A value out of range: one line, before the bus is tried.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(pump_tests::bin("pump-hook"))
            .args(["--pump", "http://127.0.0.1:1", "--weight=-5", "--nats-url", "nats://127.0.0.1:1"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let says = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{says}");
    assert_eq!(says.trim(), "pump-hook: --weight -5: expected a number 0 or more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_display_wakes_when_someone_is_there_and_sleeps_when_nobody_is() {
    let Setup { nats, c, base, pump, logs, key, .. } = setup(&["Squat"]).await;
    let args = [
        "hook",
        "--pump",
        &base,
        "--api-key-file",
        key.to_str().unwrap(),
        "--wall-wake-after-s",
        "1",
        "--wall-sleep-after-s",
        "3",
    ];
    let hook = start_hook(&args, &nats, logs.path()).await;
    let person = pump_proto::Person { score: 0.9, ..Default::default() };
    let frame = |id: u64, people: Vec<pump_proto::Person>| pump_proto::PoseFrame {
        camera: "rack1".into(),
        frame_id: id,
        people,
        ..Default::default()
    };
    // Poses of someone at 5 a second for 2 s: awake once, after a second.
    let started = std::time::Instant::now();
    for id in 0..10 {
        c.publish("pump.poses.rack1", frame(id, vec![person.clone()]).encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pump_tests::eventually("the wall woken", Duration::from_secs(10), || async {
        pump.lock().unwrap().wall == ["wake"]
    })
    .await;
    // Then poses with nobody: asleep once, 3 s after the last person.
    for id in 10..35 {
        c.publish("pump.poses.rack1", frame(id, vec![]).encode_to_vec().into()).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if pump.lock().unwrap().wall.len() > 1 {
            break;
        }
    }
    pump_tests::eventually("the wall asleep", Duration::from_secs(10), || async {
        pump.lock().unwrap().wall == ["wake", "sleep"]
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(5), "asleep only 3 s after the last person, at 2 s");
    hook.stop().await;
    assert_eq!(pump.lock().unwrap().wall, ["wake", "sleep"], "each said once");
}
