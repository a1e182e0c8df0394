//! Configuration of the capture service, validated before anything connects.

use std::time::Duration;

use pump_bus::connect::BusConfig;
use pump_bus::streams::StreamLimits;
use pump_bus::subject::CameraId;

use crate::camera::SourceSpec;
use crate::error::{Error, Result};

/// How frames are put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEncoding {
    /// The camera's own JPEG, as it came, when it sends MJPEG (nothing decoded here, a tenth of
    /// raw's bytes); raw pixels otherwise.
    Auto,
    Jpeg {
        quality: i32,
    },
    /// Raw pixels: large, but exactly what the camera gave (parity tests, local links).
    Bgr8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    pub id: CameraId,
    pub source: SourceSpec,
    /// This camera's wire encoding, over the service's.
    pub encoding: Option<FrameEncoding>,
    /// Whether this camera, a file, is replayed in real time, over the service's.
    pub realtime: Option<bool>,
}

impl CameraConfig {
    pub fn new(id: CameraId, source: SourceSpec) -> Self {
        Self { id, source, encoding: None, realtime: None }
    }
}

/// `auto`, `bgr8`, `jpeg` (quality 90) or `jpeg:Q`.
pub fn parse_encoding(s: &str) -> std::result::Result<FrameEncoding, String> {
    match s.split_once(':') {
        None if s == "auto" => Ok(FrameEncoding::Auto),
        None if s == "bgr8" => Ok(FrameEncoding::Bgr8),
        None if s == "jpeg" => Ok(FrameEncoding::Jpeg { quality: 90 }),
        Some(("jpeg", q)) => match q.parse::<i32>() {
            Ok(quality) if (1..=100).contains(&quality) => Ok(FrameEncoding::Jpeg { quality }),
            _ => Err(format!("`{s}`: JPEG quality must be within 1..=100")),
        },
        _ => Err(format!("`{s}`: expected auto, bgr8, jpeg or jpeg:QUALITY")),
    }
}

/// `CAMERA=VALUE`, the camera's name checked.
pub fn per_camera(s: &str) -> std::result::Result<(CameraId, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected CAMERA=VALUE"))?;
    Ok((CameraId::new(name).map_err(|e| e.to_string())?, value.to_string()))
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bus: BusConfig,
    pub limits: StreamLimits,
    pub cameras: Vec<CameraConfig>,
    pub encoding: FrameEncoding,
    /// A live source with no frame for this long is reopened.
    pub stall_timeout: Duration,
    /// Wait before the first reconnect; doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Replay files at their native frame rate, as live cameras, instead of paced by inference.
    pub realtime: bool,
    /// Realtime files play this many times faster than their own frame rate.
    pub realtime_speed: f64,
    /// Realtime files play again from the start when they end, for ever (a demo's live camera).
    pub looping: bool,
    /// Paced files: how long to wait for a frame's pose before sending the next frame anyway.
    pub pace_timeout: Duration,
}

impl Config {
    pub fn new(bus: BusConfig, cameras: Vec<CameraConfig>) -> Self {
        Self {
            bus,
            limits: StreamLimits::default(),
            cameras,
            // The camera's own pixels: its JPEG where it sends one, else raw; re-encoding moves
            // the poses by pixels (docs/WIRE.md).
            encoding: FrameEncoding::Auto,
            stall_timeout: Duration::from_secs(15),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            realtime: false,
            realtime_speed: 1.0,
            looping: false,
            pace_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the configuration; a file that does not exist is an error now, not a "live source"
    /// retried for ever.
    pub fn validate(&self) -> Result<()> {
        if self.cameras.is_empty() {
            return Err(Error::Config("no camera given (use --camera NAME=SOURCE)".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.cameras {
            if !seen.insert(c.id.as_str()) {
                return Err(Error::Config(format!("camera {} is given twice", c.id)));
            }
            if let SourceSpec::File(p) = &c.source {
                match std::fs::metadata(p) {
                    // A text file is no camera: refused now, as a missing file is.
                    Ok(m) if m.is_file() && crate::media::looks_like_text(p) => {
                        return Err(Error::NotMedia { path: p.clone() })
                    }
                    Ok(m) if m.is_file() => {}
                    Ok(_) => return Err(Error::NotAFile { path: p.clone() }),
                    Err(_) => return Err(Error::NotFound { path: p.clone() }),
                }
            }
        }
        if let FrameEncoding::Jpeg { quality } = self.encoding {
            if !(1..=100).contains(&quality) {
                return Err(Error::Config(format!("JPEG quality {quality} must be within 1..=100")));
            }
        }
        for (name, d) in [
            ("stall timeout", self.stall_timeout),
            ("initial backoff", self.backoff_initial),
            ("pace timeout", self.pace_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::Config(format!("{name} must be above zero")));
            }
        }
        if !(self.realtime_speed.is_finite() && self.realtime_speed > 0.0) {
            return Err(Error::Config(format!("realtime speed {} must be above zero", self.realtime_speed)));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(Error::Config("maximum backoff is below the initial backoff".into()));
        }
        Ok(())
    }
}

/// Parses `NAME=SOURCE`.
pub fn parse_camera(s: &str) -> std::result::Result<CameraConfig, String> {
    let (name, source) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=SOURCE"))?;
    let id = CameraId::new(name).map_err(|e| e.to_string())?;
    // `a=0,b=1` was once a list; now it would be a file named `0,b=1`. A URL keeps its commas.
    let listed = !source.contains("://")
        && source.split(',').skip(1).any(|part| part.split_once('=').is_some_and(|(n, _)| CameraId::new(n).is_ok()));
    if listed {
        return Err(format!("`{s}`: cameras are separated by ';' (PUMP_CAMERAS) or given one per --camera"));
    }
    Ok(CameraConfig::new(id, source.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(cams: &[&str]) -> Config {
        Config::new(BusConfig::new("nats://x", "t"), cams.iter().map(|c| parse_camera(c).unwrap()).collect())
    }

    #[test]
    fn missing_files_and_duplicates_fail_at_start() {
        assert!(matches!(cfg(&["a=/no/such.mp4"]).validate(), Err(Error::NotFound { .. })));
        let text = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert!(matches!(cfg(&[&format!("a={text}")]).validate(), Err(Error::NotMedia { .. })));
        assert!(cfg(&["a=rtsp://h/1", "a=rtsp://h/2"]).validate().is_err());
        assert!(cfg(&[]).validate().is_err());
        assert!(cfg(&["a=rtsp://h/1", "b=/dev/video0"]).validate().is_ok());
        let mut c = cfg(&["a=rtsp://h/1"]);
        c.encoding = FrameEncoding::Jpeg { quality: 0 };
        assert!(c.validate().is_err());
    }

    #[test]
    fn camera_flags_parse() {
        assert!(parse_camera("rack1").is_err());
        assert!(parse_camera("bad.name=x.mp4").is_err());
        assert_eq!(parse_camera("rack1=0").unwrap().source, SourceSpec::Device(0));
        // A URL survives its commas; an old comma list is refused, not read as two cameras.
        let url = parse_camera("rack1=http://h/x?a=1,b=2").unwrap();
        assert_eq!(url.source, SourceSpec::Url("http://h/x?a=1,b=2".into()));
        assert!(parse_camera("a=0,b=1").unwrap_err().contains("separated by ';'"));
    }
}
