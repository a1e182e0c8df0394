//! A gym on one machine: live cameras (the squat clip's JPEGs served as HTTP MJPEG cameras, and
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

/// The squat clip's frame rate: its cameras send 15 frames a second.
const CLIP_FPS: f64 = 15.0;

/// ffmpeg serving a clip once, in real time, as an MJPEG camera on `http://127.0.0.1:PORT/cam.mjpg`
/// (it waits for its one client, then plays). As a network camera does, it sends JPEGs it made
/// itself: the clip is encoded to MJPEG once ([`mjpeg_of`]) and served as it is, as a real one
/// encodes on its own chip. Its process still takes ~5 ms of CPU a second, which [`JpegCamera`]
/// spares the many-cameras runs.
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
            .arg(mjpeg_of(clip))
            .args(["-c:v", "copy", "-f", "mpjpeg", "-listen", "1", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg (apt install ffmpeg)");
        Self { child, url }
    }
}

/// `clip` encoded as MJPEG (JPEG quality 3 of ffmpeg's 2–31, as a camera's "high") in an AVI at
/// the clip's frame rate, made once and kept under target/ for later runs.
pub fn mjpeg_of(clip: &std::path::Path) -> std::path::PathBuf {
    let dir = crate::workspace().join("target").join("pump-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let name = clip.file_name().unwrap().to_string_lossy();
    let out = dir.join(format!("{name}.mjpeg.avi"));
    if out.exists() {
        return out;
    }
    // Made under a name of its own and renamed: tests running at once never see half a file.
    let part = dir.join(format!("{name}.{}.{}.avi", std::process::id(), pump_bus::clock::now_ns()));
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .args(["-c:v", "mjpeg", "-q:v", "3", "-an"])
        .arg(&part)
        .status()
        .expect("ffmpeg (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not encode {}", clip.display());
    std::fs::rename(&part, &out).unwrap();
    out
}

/// A network camera as the host sees one: the JPEGs its chip made (`frames`: the clip's MJPEG
/// frames, [`jpegs_of`], shared by every camera playing it), served as HTTP MJPEG in real time
/// from a thread of this process, to its one client (it waits for it, then plays once). A camera's encoder is not on the host that counts
/// its reps; an ffmpeg process per camera is (0.04 cores for 8 here), which the many-cameras
/// runs would charge to pump. The stream is the one a camera sends (multipart JPEG parts, each
/// with its length); capture reads it with the same FFmpeg demuxer as any camera's.
#[derive(Debug)]
pub struct JpegCamera {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The serving thread's `/proc` stat file, for the CPU it took.
    stat: std::sync::Arc<std::sync::OnceLock<std::path::PathBuf>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub url: String,
}

impl JpegCamera {
    pub fn serve(frames: std::sync::Arc<[Vec<u8>]>, fps: f64) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/cam.mjpg", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let stat = std::sync::Arc::new(std::sync::OnceLock::new());
        let own_stat = stat.clone();
        let thread = std::thread::spawn(move || {
            if let Ok(task) = std::fs::read_link("/proc/thread-self") {
                let _ = own_stat.set(std::path::Path::new("/proc").join(task).join("stat"));
            }
            let mut client = loop {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            client.set_nonblocking(false).unwrap();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            client.set_nodelay(true).unwrap();
            // The request (one GET, headers only) is read and not looked at: any path plays.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut buf) {
                    Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=pumpcam\r\n\
                        Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
            if client.write_all(head.as_bytes()).is_err() {
                return;
            }
            let start = Instant::now();
            for (i, jpeg) in frames.iter().enumerate() {
                let due = start + Duration::from_secs_f64(i as f64 / fps);
                while let Some(wait) = due.checked_duration_since(Instant::now()) {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(wait.min(Duration::from_millis(50)));
                }
                let mut part =
                    format!("--pumpcam\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len())
                        .into_bytes();
                part.extend_from_slice(jpeg);
                part.extend_from_slice(b"\r\n");
                if client.write_all(&part).is_err() {
                    return;
                }
            }
        });
        Self { stop, stat, thread: Some(thread), url }
    }

    /// CPU seconds its thread has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.stat.get().map(|p| cpu_seconds_at(p)).unwrap_or(0.0)
    }
}

impl Drop for JpegCamera {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The JPEGs of [`mjpeg_of`]'s clip, one per frame, as ffmpeg made them (copied out, not
/// re-encoded); kept under target/ for later runs.
pub fn jpegs_of(clip: &std::path::Path) -> Vec<Vec<u8>> {
    let avi = mjpeg_of(clip);
    let dir = avi.with_extension("jpegs");
    if !dir.exists() {
        let part = avi.with_extension(format!("{}.{}.part", std::process::id(), pump_bus::clock::now_ns()));
        std::fs::create_dir_all(&part).unwrap();
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-i"])
            .arg(&avi)
            .args(["-c:v", "copy", "-f", "image2"])
            .arg(part.join("%05d.jpg"))
            .status()
            .expect("ffmpeg (apt install ffmpeg)");
        assert!(status.success(), "ffmpeg could not split {}", avi.display());
        // Another run may have made it meanwhile: either copy is the same.
        let _ = std::fs::rename(&part, &dir);
        let _ = std::fs::remove_dir_all(&part);
    }
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

impl Drop for FfmpegCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the gym gave: every camera's stored sets, its poses as they came off the bus, the CPU
/// each process took while the cameras played, and how long it took.
#[derive(Debug)]
pub struct GymRun {
    pub sets: BTreeMap<String, Vec<pump_proto::SetEvent>>,
    pub poses: BTreeMap<String, CameraPoses>,
    /// CPU seconds per process (all cameras' threads summed) by wall clock (ns), sampled every
    /// quarter second from the capture's start to the last set.
    pub cpu: Vec<(i64, Vec<(&'static str, f64)>)>,
    pub took: Duration,
}

/// One camera's poses as a subscriber saw them (end-of-stream markers left out).
#[derive(Debug, Clone, Default)]
pub struct CameraPoses {
    /// Publish times (ns, this host's clock).
    pub published_ns: Vec<i64>,
    /// Frame age at publish (publish − capture) and the model run, ms, per pose.
    pub age_ms: Vec<f64>,
    pub model_ms: Vec<f64>,
    /// The inference instance's counts for the camera at its last pose.
    pub received: u64,
    pub dropped: u64,
}

impl GymRun {
    /// The span every camera was being posed: from the last camera's first pose to the first
    /// camera's last one. Rates over it compare cameras fairly (none is starting or ending).
    pub fn common_window(&self) -> Option<(i64, i64)> {
        let start = self.poses.values().filter_map(|c| c.published_ns.first()).max()?;
        let end = self.poses.values().filter_map(|c| c.published_ns.last()).min()?;
        (end > start).then_some((*start, *end))
    }

    /// Frame ages (ms) of the poses published while every camera was live: from the common
    /// window's start up to, not including, its end. A camera's last frame is left out so: with
    /// nothing newer to replace it, it waits its turn behind every other camera's (hundreds of
    /// ms at 8 cameras), which a live camera, never sending a last frame, does not do.
    pub fn steady_ages(&self) -> Vec<f64> {
        let Some((a, b)) = self.common_window() else { return Vec::new() };
        let in_window = |c: &CameraPoses| {
            c.published_ns
                .iter()
                .zip(&c.age_ms)
                .filter(|(t, _)| (a..b).contains(*t))
                .map(|(_, age)| *age)
                .collect::<Vec<_>>()
        };
        self.poses.values().flat_map(in_window).collect()
    }

    /// Cores each process used over the common window (nearest samples).
    pub fn cores(&self) -> Vec<(&'static str, f64)> {
        let (Some((a, b)), Some(_)) = (self.common_window(), self.cpu.first()) else { return Vec::new() };
        let nearest = |t: i64| self.cpu.iter().min_by_key(|(at, _)| (at - t).abs()).map(|(at, v)| (*at, v));
        let (Some((ta, va)), Some((tb, vb))) = (nearest(a), nearest(b)) else { return Vec::new() };
        let secs = (tb - ta) as f64 / 1e9;
        va.iter()
            .zip(vb)
            .map(|((name, then), (_, now))| (*name, if secs > 0.0 { (now - then) / secs } else { 0.0 }))
            .collect()
    }

    /// Each camera's poses per second over the common window.
    pub fn pose_rates(&self) -> BTreeMap<String, f64> {
        let Some((a, b)) = self.common_window() else { return BTreeMap::new() };
        let secs = (b - a) as f64 / 1e9;
        self.poses
            .iter()
            .map(|(c, p)| (c.clone(), p.published_ns.iter().filter(|t| (a..=b).contains(*t)).count() as f64 / secs))
            .collect()
    }
}

/// The model's limit on this machine: `pump detect`'s frames per second on the squat clip, and
/// its frames per CPU-second, from one and three passes (the difference leaves out loading the
/// engines).
pub fn detect_limit(engine_args: &[String]) -> (f64, f64) {
    let clip = testdata("squat_5reps_15fps.mp4");
    let run = |passes: usize| {
        let t0 = Instant::now();
        let child = Command::new(crate::bin("pump"))
            .arg("detect")
            .arg("--no-progress")
            .args(engine_args)
            .args(std::iter::repeat_n(&clip, passes))
            .stdout(Stdio::null())
            .spawn()
            .expect("pump detect");
        let pid = child.id();
        // Its CPU time is read just before it is reaped (a reaped process's is gone).
        let mut cpu = 0.0;
        let mut child = child;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "pump detect failed");
                break;
            }
            cpu = cpu_seconds(pid).max(cpu);
            std::thread::sleep(Duration::from_millis(20));
        }
        (t0.elapsed().as_secs_f64(), cpu)
    };
    let frames = 180.0;
    let ((one, cpu1), (three, cpu3)) = (run(1), run(3));
    (2.0 * frames / (three - one), 2.0 * frames / (cpu3 - cpu1))
}

/// The `p` quantile (0..=1) of `xs`, nearest rank; 0 for none.
pub fn quantile(xs: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU seconds (user + system) a process has used so far; 0 once it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_at(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU seconds from a process's or thread's `/proc` stat file; 0 once it is gone.
fn cpu_seconds_at(path: &std::path::Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
    // Linux's USER_HZ is 100 on every architecture it runs on.
    ticks / 100.0
}

async fn collect_poses(
    mut sub: async_nats::Subscriber,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> BTreeMap<String, CameraPoses> {
    let mut out: BTreeMap<String, CameraPoses> = BTreeMap::new();
    loop {
        let m = tokio::select! {
            m = futures::StreamExt::next(&mut sub) => match m { Some(m) => m, None => break },
            _ = &mut stop => break,
        };
        let Ok(p) = pump_proto::PoseFrame::decode(m.payload) else { continue };
        if p.end_of_stream {
            continue;
        }
        let c = out.entry(p.camera.clone()).or_default();
        c.published_ns.push(p.publish_ts_ns);
        c.age_ms.push((p.publish_ts_ns - p.capture_ts_ns) as f64 / 1e6);
        c.model_ms.push((p.inference_end_ns - p.inference_start_ns) as f64 / 1e6);
        c.received = p.frames_received;
        c.dropped = p.frames_dropped;
    }
    out
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

/// Runs `http` HTTP MJPEG cameras ([`JpegCamera`]) and `files` real-time file cameras, all
/// playing the squat clip once, through one pump-capture, `pump-infer` with `infer_args`, and
/// pump-sets (squats, a set closes 6 s after its last rep); returns once every camera has a set
/// (or after `within`).
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
    let jpegs: std::sync::Arc<[Vec<u8>]> = jpegs_of(&clip).into();
    let cameras: Vec<JpegCamera> = (0..http).map(|_| JpegCamera::serve(jpegs.clone(), CLIP_FPS)).collect();
    let mut args = vec!["--realtime".to_string()];
    for (i, f) in cameras.iter().enumerate() {
        args.extend(["--camera".into(), format!("http{i}={}", f.url)]);
    }
    for i in 0..files {
        args.extend(["--camera".into(), format!("file{i}={}", clip.display())]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let poses_client = crate::services::client(&nats, "gym-poses").await;
    let subscription = poses_client.subscribe(pump_bus::subject::POSES_ALL).await.unwrap();
    // The subscription is in place once a round trip through the server has been made.
    poses_client.flush().await.unwrap();
    let (stop_collector, stopped) = tokio::sync::oneshot::channel();
    let collector = tokio::spawn(collect_poses(subscription, stopped));
    let t0 = Instant::now();
    let capture = Service::start("pump-capture", &args, &env(free_addr()), logs.path());
    let mut pids: Vec<(&'static str, u32)> =
        vec![("pump-infer", infer.pid()), ("pump-capture", capture.pid()), ("pump-sets", sets.pid())];
    pids.extend(nats.pid().map(|p| ("nats-server", p)));
    let cpu_at = |pids: &[(&'static str, u32)]| -> Vec<(&'static str, f64)> {
        let cameras_cpu = cameras.iter().map(JpegCamera::cpu_seconds).sum();
        pids.iter().map(|(name, pid)| (*name, cpu_seconds(*pid))).chain([("cameras", cameras_cpu)]).collect()
    };
    let mut cpu = vec![(pump_bus::clock::now_ns(), cpu_at(&pids))];
    let deadline = Instant::now() + within;
    let sets_now = loop {
        let got = stored_sets(&client).await;
        if got.len() >= http + files || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        cpu.push((pump_bus::clock::now_ns(), cpu_at(&pids)));
    };
    let took = t0.elapsed();
    // A moment for a stray second set of any camera to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sets_final = stored_sets(&client).await;
    assert!(sets_final.len() >= sets_now.len());
    for s in [capture, infer, sets] {
        s.stop().await;
    }
    drop(cameras);
    let _ = stop_collector.send(());
    let poses = tokio::time::timeout(Duration::from_secs(10), collector).await.unwrap().unwrap();
    GymRun { sets: sets_final, poses, cpu, took }
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
