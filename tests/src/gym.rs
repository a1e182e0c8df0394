//! A gym on one machine: live cameras (ffmpeg serving the squat clip as HTTP MJPEG cameras, and
//! the clip replayed in real time as file cameras) through the real service binaries, and the
//! sets each camera gave. Shared by the many-cameras test and `just bench`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;

use crate::nats::free_port;
use crate::procs::{free_addr, wait_ready, Service};
use crate::{testdata, NatsServer};

/// ffmpeg serving a clip once, in real time, as an MJPEG camera on `http://127.0.0.1:PORT/cam.mjpg`
/// (it waits for its one client, then plays).
#[derive(Debug)]
pub struct FfmpegCamera {
    child: Child,
    pub url: String,
}

impl FfmpegCamera {
    pub fn serve(clip: &std::path::Path) -> Self {
        Self::start(clip, false)
    }

    /// The clip again and again, for ever (the soak).
    pub fn serve_looping(clip: &std::path::Path) -> Self {
        Self::start(clip, true)
    }

    fn start(clip: &std::path::Path, looping: bool) -> Self {
        let url = format!("http://127.0.0.1:{}/cam.mjpg", free_port());
        let times = if looping { "-1" } else { "0" };
        let child = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-stream_loop", times, "-re", "-i"])
            .arg(clip)
            .args(["-c:v", "mjpeg", "-q:v", "3", "-f", "mpjpeg", "-listen", "1", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg (apt install ffmpeg)");
        Self { child, url }
    }
}

impl Drop for FfmpegCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the gym gave: every camera's stored sets, and how long it took.
#[derive(Debug)]
pub struct GymRun {
    pub sets: BTreeMap<String, Vec<pump_proto::SetEvent>>,
    pub took: Duration,
}

/// The sets stored so far, by camera.
pub async fn stored_sets(client: &async_nats::Client) -> BTreeMap<String, Vec<pump_proto::SetEvent>> {
    let js = async_nats::jetstream::new(client.clone());
    let mut out: BTreeMap<String, Vec<pump_proto::SetEvent>> = BTreeMap::new();
    let Ok(mut stream) = js.get_stream(pump_bus::streams::SETS_STREAM).await else { return out };
    let Ok(info) = stream.info().await else { return out };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return out;
    }
    for seq in first..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let set = pump_proto::SetEvent::decode(m.payload).unwrap();
            out.entry(set.camera.clone()).or_default().push(set);
        }
    }
    out
}

/// Runs `http` ffmpeg HTTP cameras and `files` real-time file cameras, all playing the squat clip
/// once, through one pump-capture, `pump-infer` with `infer_args`, and pump-sets (squats, a set
/// closes 6 s after its last rep); returns once every camera has a set (or after `within`).
pub async fn live_cameras(http: usize, files: usize, infer_args: &[&str], within: Duration) -> GymRun {
    let nats = NatsServer::start();
    let logs = tempfile::tempdir().unwrap();
    let client = crate::services::client(&nats, "gym").await;
    let env = |http: std::net::SocketAddr| {
        vec![("PUMP_NATS_URL", nats.url()), ("PUMP_LOG", "warn".to_string()), ("PUMP_HTTP_ADDR", http.to_string())]
    };
    let (infer_http, sets_http) = (free_addr(), free_addr());
    let infer = Service::start("pump-infer", infer_args, &env(infer_http), logs.path());
    let sets =
        Service::start("pump-sets", &["--exercise", "squat", "--quiet-seconds", "6"], &env(sets_http), logs.path());
    wait_ready(&infer, infer_http).await;
    wait_ready(&sets, sets_http).await;
    let clip = testdata("squat_5reps_15fps.mp4");
    let ffmpegs: Vec<FfmpegCamera> = (0..http).map(|_| FfmpegCamera::serve(&clip)).collect();
    let mut args = vec!["--realtime".to_string()];
    for (i, f) in ffmpegs.iter().enumerate() {
        args.extend(["--camera".into(), format!("http{i}={}", f.url)]);
    }
    for i in 0..files {
        args.extend(["--camera".into(), format!("file{i}={}", clip.display())]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let capture = Service::start("pump-capture", &args, &env(free_addr()), logs.path());
    let deadline = Instant::now() + within;
    let sets_now = loop {
        let got = stored_sets(&client).await;
        if got.len() >= http + files || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let took = t0.elapsed();
    // A moment for a stray second set of any camera to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sets_final = stored_sets(&client).await;
    assert!(sets_final.len() >= sets_now.len());
    for s in [capture, infer, sets] {
        let name = s.name;
        let (status, log, _) = s.terminate().await;
        assert_eq!(status.code(), Some(0), "{name}: {log}");
    }
    drop(ffmpegs);
    GymRun { sets: sets_final, took }
}

/// The contract of a set on a live camera: exact (and not pending) when its pose rate held at
/// or above the floor; under it — a machine busier than the camera count allows — the count may
/// be off, but then the set says so (pending). Never a wrong count that looks right.
pub fn check_set(set: &pump_proto::SetEvent, want_reps: u32) -> Result<(), String> {
    let floor = pump_sets::DEFAULT_MIN_POSE_RATE;
    let what = format!("{}: {} reps at {:.1} poses/s, pending {}", set.camera, set.reps, set.pose_rate, set.pending);
    if set.pose_rate >= floor {
        if set.reps != want_reps || set.pending {
            return Err(format!("{what}: at or above the floor it must be exact ({want_reps}) and not pending"));
        }
    } else if !set.pending {
        return Err(format!("{what}: under the floor it must be pending"));
    }
    Ok(())
}
