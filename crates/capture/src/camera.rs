//! Cameras: what the capture service reads from. A trait, so scheduling tests can use a fake
//! with camera timing (named as such), and one OpenCV implementation for files, URLs and devices.

use std::path::PathBuf;
use std::str::FromStr;

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio;

use crate::error::{Error, Result};

/// A source of frames. `read` blocks until the next frame; a capture is released by the thread
/// that reads it, never while a read runs.
pub trait Camera: Send {
    /// Opens the source; called once per camera instance.
    fn open(&mut self) -> Result<()>;
    /// Decodes the next frame into `frame`, returning its media timestamp in ns (negative when
    /// the source gives none; [`crate::timeline`] decides what to trust); `None` when a file ends.
    fn read(&mut self, frame: &mut Mat) -> Result<Option<i64>>;
    /// Frees the device or decoder.
    fn release(&mut self);
    /// The source's nominal frame rate (0 when unknown).
    fn fps(&self) -> f64;
    /// Whether `read` gives the camera's own JPEG, undecoded (one row of bytes), instead of
    /// pixels. Known once opened.
    fn passes_jpeg(&self) -> bool {
        false
    }
}

/// Makes a fresh camera for each connection attempt: a stalled one may still be blocked in
/// `read` when the next attempt starts.
pub type CameraFactory = std::sync::Arc<dyn Fn() -> Box<dyn Camera> + Send + Sync>;

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    File(PathBuf),
    Url(String),
    Device(i32),
}

impl SourceSpec {
    pub fn is_file(&self) -> bool {
        matches!(self, SourceSpec::File(_))
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err("empty source".into());
        }
        let lower = s.to_ascii_lowercase();
        if ["rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Ok(SourceSpec::Url(s.into()));
        }
        if let Some(n) = s.strip_prefix("/dev/video").and_then(|n| n.parse().ok()) {
            return Ok(SourceSpec::Device(n));
        }
        if let Ok(n) = s.parse::<i32>() {
            return Ok(SourceSpec::Device(n));
        }
        Ok(SourceSpec::File(PathBuf::from(s)))
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::File(p) => write!(f, "{}", p.display()),
            // Shown in logs, errors and health: never the camera's password.
            SourceSpec::Url(u) => f.write_str(&pump_bus::redact::url(u)),
            SourceSpec::Device(n) => write!(f, "/dev/video{n}"),
        }
    }
}

/// A camera read through OpenCV: FFmpeg for files and URLs, V4L2 for devices.
pub struct OpenCvCamera {
    spec: SourceSpec,
    cap: Option<videoio::VideoCapture>,
    fps: f64,
    /// FFmpeg's own read timeout, a backstop under the service's stall watchdog.
    read_timeout_ms: i32,
    /// Hand on an MJPEG source's JPEGs as they came rather than decoding them.
    jpeg_passthrough: bool,
    /// Whether this opening does.
    passing: bool,
}

impl std::fmt::Debug for OpenCvCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCvCamera").field("spec", &self.spec).field("open", &self.cap.is_some()).finish()
    }
}

impl OpenCvCamera {
    pub fn new(spec: SourceSpec, read_timeout_ms: i32) -> Self {
        Self { spec, cap: None, fps: 0.0, read_timeout_ms, jpeg_passthrough: false, passing: false }
    }

    /// An MJPEG source's frames are read as the camera's JPEGs, undecoded: decoding is left to
    /// whoever needs the pixels (inference, for the frames it takes).
    pub fn with_jpeg_passthrough(mut self, on: bool) -> Self {
        self.jpeg_passthrough = on;
        self
    }

    fn uri(&self) -> String {
        self.spec.to_string()
    }
}

impl Camera for OpenCvCamera {
    fn open(&mut self) -> Result<()> {
        let uri = self.uri();
        let err = |source| Error::OpenCamera { uri: uri.clone(), source };
        let cap = match &self.spec {
            SourceSpec::Device(n) => videoio::VideoCapture::new(*n, videoio::CAP_V4L2).map_err(err)?,
            SourceSpec::File(p) => {
                videoio::VideoCapture::from_file(p.to_string_lossy().as_ref(), videoio::CAP_FFMPEG).map_err(err)?
            }
            SourceSpec::Url(u) => {
                let params = opencv::core::Vector::<i32>::from_slice(&[
                    videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
                    self.read_timeout_ms,
                    videoio::CAP_PROP_READ_TIMEOUT_MSEC,
                    self.read_timeout_ms,
                ]);
                videoio::VideoCapture::from_file_with_params(u, videoio::CAP_FFMPEG, &params).map_err(err)?
            }
        };
        if !cap.is_opened().map_err(err)? {
            return Err(Error::CameraUnavailable { uri });
        }
        let fps = cap.get(videoio::CAP_PROP_FPS).map_err(err)?;
        self.fps = if fps.is_finite() && fps > 0.0 { fps } else { 0.0 };
        let mut cap = cap;
        // FFmpeg's raw mode hands out demuxed packets; for MJPEG each is one whole JPEG. It can
        // only be switched on before the first frame.
        self.passing = self.jpeg_passthrough
            && is_mjpeg(cap.get(videoio::CAP_PROP_FOURCC).map_err(err)?)
            && cap.set(videoio::CAP_PROP_FORMAT, -1.0).map_err(err)?;
        self.cap = Some(cap);
        Ok(())
    }

    fn read(&mut self, frame: &mut Mat) -> Result<Option<i64>> {
        let uri = self.uri();
        let is_file = self.spec.is_file();
        let Some(cap) = self.cap.as_mut() else { return Err(Error::CameraUnavailable { uri }) };
        let err = |source| Error::ReadCamera { uri: uri.clone(), source };
        if cap.read(frame).map_err(err)? && !frame.empty() {
            let ms = cap.get(videoio::CAP_PROP_POS_MSEC).map_err(err)?;
            Ok(Some(if ms.is_finite() && ms >= 0.0 { (ms * 1e6) as i64 } else { -1 }))
        } else if is_file {
            Ok(None)
        } else {
            Err(Error::CameraUnavailable { uri })
        }
    }

    fn release(&mut self) {
        if let Some(mut cap) = self.cap.take() {
            let _ = cap.release();
        }
    }

    fn fps(&self) -> f64 {
        self.fps
    }

    fn passes_jpeg(&self) -> bool {
        self.passing
    }
}

/// Whether OpenCV's FOURCC names Motion JPEG: the container's tag (`MJPG`, `mjpa`, `jpeg`, …)
/// or, without one, the first four letters of FFmpeg's codec name (`mjpe`).
fn is_mjpeg(fourcc: f64) -> bool {
    if !(fourcc.is_finite() && fourcc > 0.0 && fourcc <= f64::from(u32::MAX)) {
        return false;
    }
    let tag = (fourcc as u32).to_le_bytes().to_ascii_lowercase();
    tag.starts_with(b"mjp") || &tag == b"jpeg"
}

pub mod fake {
    //! FAKE camera for scheduling tests and benchmarks: camera timing only (each read takes one
    //! frame period), synthetic pixels, scripted failures and stalls, and a log of what happened
    //! in which order.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use opencv::core::{Mat, Scalar, CV_8UC3};

    use super::{Camera, CameraFactory};
    use crate::error::{Error, Result};

    /// What a fake camera did, in order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FakeEvent {
        Open { instance: usize },
        OpenFailed { instance: usize },
        ReadStart { instance: usize },
        ReadEnd { instance: usize },
        Release { instance: usize },
    }

    /// The script every instance of one fake camera follows.
    #[derive(Debug, Clone)]
    pub struct FakeCameraScript {
        pub fps: f64,
        pub width: i32,
        pub height: i32,
        /// Frames in all before the "file" ends (`None`: a live camera, endless).
        pub frames: Option<usize>,
        /// The first this many opens fail.
        pub failing_opens: usize,
        /// After this many frames (counted over all instances) one read, once, blocks until `unstall`.
        pub stall_after: Option<usize>,
        /// Every read sleeps a full frame period (the original benchmark's camera mock), instead
        /// of frames being due on a clock (a camera that always has its newest frame ready).
        pub read_takes_period: bool,
    }

    impl Default for FakeCameraScript {
        fn default() -> Self {
            Self {
                fps: 30.0,
                width: 64,
                height: 48,
                frames: None,
                failing_opens: 0,
                stall_after: None,
                read_takes_period: false,
            }
        }
    }

    /// State shared by every instance, for the test to inspect and steer.
    #[derive(Debug, Default)]
    pub struct FakeCameraLog {
        pub events: Mutex<Vec<(Instant, FakeEvent)>>,
        opens: AtomicUsize,
        frames: AtomicUsize,
        instances: AtomicUsize,
        stalled: Mutex<bool>,
        /// The scripted stall happens once, whichever instance reaches it.
        stall_taken: std::sync::atomic::AtomicBool,
        unstall: std::sync::Condvar,
        released_stall: Mutex<bool>,
    }

    impl FakeCameraLog {
        fn log(&self, e: FakeEvent) {
            self.events.lock().unwrap_or_else(|e| e.into_inner()).push((Instant::now(), e));
        }

        pub fn events(&self) -> Vec<(Instant, FakeEvent)> {
            self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        pub fn frames_read(&self) -> usize {
            self.frames.load(Ordering::SeqCst)
        }

        /// Ends a stalled read (it then fails).
        pub fn unstall(&self) {
            *self.released_stall.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.unstall.notify_all();
        }

        pub fn is_stalled(&self) -> bool {
            *self.stalled.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// One instance of a fake camera.
    #[derive(Debug)]
    pub struct FakeCamera {
        script: FakeCameraScript,
        log: Arc<FakeCameraLog>,
        instance: usize,
        open: bool,
        next_due: Option<Instant>,
    }

    impl FakeCamera {
        /// A factory whose cameras share `log`.
        pub fn factory(script: FakeCameraScript, log: Arc<FakeCameraLog>) -> CameraFactory {
            Arc::new(move || {
                let instance = log.instances.fetch_add(1, Ordering::SeqCst);
                Box::new(FakeCamera { script: script.clone(), log: log.clone(), instance, open: false, next_due: None })
                    as Box<dyn Camera>
            })
        }
    }

    impl Camera for FakeCamera {
        fn open(&mut self) -> Result<()> {
            let n = self.log.opens.fetch_add(1, Ordering::SeqCst);
            if n < self.script.failing_opens {
                self.log.log(FakeEvent::OpenFailed { instance: self.instance });
                return Err(Error::CameraUnavailable { uri: "fake://camera".into() });
            }
            self.open = true;
            self.log.log(FakeEvent::Open { instance: self.instance });
            Ok(())
        }

        fn read(&mut self, frame: &mut Mat) -> Result<Option<i64>> {
            self.log.log(FakeEvent::ReadStart { instance: self.instance });
            let done = |log: &FakeCameraLog, instance| log.log(FakeEvent::ReadEnd { instance });
            let n = self.log.frames.load(Ordering::SeqCst);
            if self.script.frames.is_some_and(|total| n >= total) {
                done(&self.log, self.instance);
                return Ok(None);
            }
            if self.script.stall_after == Some(n) && !self.log.stall_taken.swap(true, Ordering::SeqCst) {
                *self.log.stalled.lock().unwrap_or_else(|e| e.into_inner()) = true;
                let mut released = self.log.released_stall.lock().unwrap_or_else(|e| e.into_inner());
                while !*released {
                    released = self.log.unstall.wait(released).unwrap_or_else(|e| e.into_inner());
                }
                *self.log.stalled.lock().unwrap_or_else(|e| e.into_inner()) = false;
                done(&self.log, self.instance);
                return Err(Error::CameraUnavailable { uri: "fake://camera (stalled)".into() });
            }
            // Camera timing: a frame every period, however fast the caller asks.
            let period = Duration::from_secs_f64(1.0 / self.script.fps);
            if self.script.read_takes_period {
                std::thread::sleep(period);
            }
            let due =
                if self.script.read_takes_period { Instant::now() } else { self.next_due.unwrap_or_else(Instant::now) };
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.next_due = Some(due.max(Instant::now() - period) + period);
            let v = (n % 256) as f64;
            *frame = Mat::new_rows_cols_with_default(self.script.height, self.script.width, CV_8UC3, Scalar::all(v))
                .map_err(|e| Error::ReadCamera { uri: "fake://camera".into(), source: e })?;
            self.log.frames.fetch_add(1, Ordering::SeqCst);
            done(&self.log, self.instance);
            Ok(Some((n as f64 / self.script.fps * 1e9) as i64))
        }

        fn release(&mut self) {
            if self.open {
                self.open = false;
                self.log.log(FakeEvent::Release { instance: self.instance });
            }
        }

        fn fps(&self) -> f64 {
            self.script.fps
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_shape() {
        assert_eq!("rtsp://cam/1".parse(), Ok(SourceSpec::Url("rtsp://cam/1".into())));
        assert_eq!("/dev/video2".parse(), Ok(SourceSpec::Device(2)));
        assert_eq!("0".parse(), Ok(SourceSpec::Device(0)));
        assert_eq!("clips/a.mp4".parse(), Ok(SourceSpec::File("clips/a.mp4".into())));
        assert!("".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn motion_jpeg_is_told_by_its_fourcc() {
        let fourcc = |s: &[u8; 4]| f64::from(u32::from_le_bytes(*s));
        for yes in [b"MJPG", b"mjpe", b"mjpa", b"jpeg", b"JPEG"] {
            assert!(is_mjpeg(fourcc(yes)), "{:?}", std::str::from_utf8(yes));
        }
        for no in [b"mp4v", b"avc1", b"h264", b"hev1"] {
            assert!(!is_mjpeg(fourcc(no)), "{:?}", std::str::from_utf8(no));
        }
        assert!(!is_mjpeg(0.0) && !is_mjpeg(-1.0) && !is_mjpeg(f64::NAN));
    }
}
