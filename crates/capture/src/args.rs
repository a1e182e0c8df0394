//! `pump-capture`'s flags, and the service's configuration they make.

use std::time::Duration;

use clap::Parser;

use pump_bus::args::CommonArgs;
use pump_capture::config::{parse_camera, CameraConfig, FrameEncoding};
use pump_capture::tls::CameraTls;
use pump_capture::Config;

#[derive(Debug, Parser)]
#[command(name = "pump-capture", version, about = "Publishes the newest frame of each camera to pump.frames.<camera>")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A camera as NAME=SOURCE: a video file, an rtsp/http URL, or a V4L2 device (/dev/video0 or 0).
    /// Repeat the flag for more; in PUMP_CAMERAS separate them with ';' (URLs keep their commas).
    #[arg(long = "camera", env = "PUMP_CAMERAS", value_delimiter = ';', required = true, value_parser = parse_camera)]
    cameras: Vec<CameraConfig>,
    /// Wire encoding of frames: auto (an MJPEG camera's own JPEGs as they came: nothing decoded
    /// here, a tenth of the bytes; other sources as bgr8), bgr8 (raw: the poses are the camera's,
    /// exactly; needs nats-server's max_payload above width × height × 3, see deploy/nats.conf,
    /// else JPEG is sent) or jpeg (re-encoded at --jpeg-quality, for slow links; poses move by
    /// pixels).
    #[arg(long, env = "PUMP_ENCODING", default_value = "auto", value_parser = ["auto", "jpeg", "bgr8"])]
    encoding: String,
    /// JPEG quality (1-100), with --encoding jpeg.
    #[arg(long, env = "PUMP_JPEG_QUALITY", default_value_t = 90)]
    jpeg_quality: i32,
    /// A live camera with no frame for this long is reopened.
    #[arg(long, env = "PUMP_STALL_TIMEOUT_MS", default_value_t = 15_000)]
    stall_timeout_ms: u64,
    /// First reconnect delay; doubles per failure up to --backoff-max-ms.
    #[arg(long, env = "PUMP_BACKOFF_INITIAL_MS", default_value_t = 1_000)]
    backoff_initial_ms: u64,
    /// Longest reconnect delay.
    #[arg(long, env = "PUMP_BACKOFF_MAX_MS", default_value_t = 30_000)]
    backoff_max_ms: u64,
    /// Replay files at their native frame rate as live cameras, instead of paced by inference.
    #[arg(long, env = "PUMP_REALTIME", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    realtime: bool,
    /// With --realtime: a file that ends plays again from its start, for ever, each play a new
    /// segment of the camera's timeline (a demo's camera that stays live).
    #[arg(long = "loop", env = "PUMP_LOOP", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    looping: bool,
    /// With --realtime: play this many times faster than the file's own frame rate.
    #[arg(long, env = "PUMP_REALTIME_SPEED", default_value_t = 1.0)]
    realtime_speed: f64,
    /// CA certificates (PEM) an https camera's certificate must chain to [default: the system's].
    #[arg(long, env = "PUMP_CAMERA_CA_FILE")]
    camera_ca_file: Option<std::path::PathBuf>,
    /// Accept https and rtsps cameras whatever their certificates (a camera with a self-signed
    /// one; FFmpeg can verify no rtsps camera): anyone on the path can then feed the camera's
    /// stream.
    #[arg(long, env = "PUMP_CAMERA_TLS_INSECURE", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    camera_tls_insecure: bool,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9101")]
    pub http_addr: std::net::SocketAddr,
    /// One camera's encoding over --encoding: CAMERA=auto, CAMERA=bgr8, CAMERA=jpeg or CAMERA=jpeg:QUALITY
    /// (repeat; ';'-separated in the variable).
    #[arg(long, env = "PUMP_CAMERA_ENCODING", value_delimiter = ';', value_parser = pump_capture::config::per_camera)]
    camera_encoding: Vec<(pump_bus::subject::CameraId, String)>,
    /// One file camera replayed in real time or not, over --realtime: CAMERA=true|false (repeat).
    #[arg(long, env = "PUMP_CAMERA_REALTIME", value_delimiter = ';', value_parser = pump_capture::config::per_camera)]
    camera_realtime: Vec<(pump_bus::subject::CameraId, String)>,
    /// Paced files: wait at most this long for a frame's pose before sending the next.
    #[arg(long, env = "PUMP_PACE_TIMEOUT_MS", default_value_t = 10_000)]
    pace_timeout_ms: u64,
}

impl Args {
    /// The service's configuration and how camera certificates are checked; what is wrong with
    /// the flags, in one line.
    pub fn config(&self) -> Result<(Config, CameraTls), String> {
        let tls = CameraTls { ca_file: self.camera_ca_file.clone(), insecure: self.camera_tls_insecure };
        if let Some(why) = tls.refuses(&self.cameras) {
            return Err(why);
        }
        let mut cameras = self.cameras.clone();
        per_camera_settings(&mut cameras, &self.camera_encoding, &self.camera_realtime)?;
        let mut config = Config::new(self.common.bus("pump-capture")?, cameras);
        config.limits = self.common.stream_limits();
        // Checked whichever encoding is chosen: a bad value is a mistake even while unused.
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(format!("JPEG quality {} must be within 1..=100", self.jpeg_quality));
        }
        config.encoding = match self.encoding.as_str() {
            "auto" => FrameEncoding::Auto,
            "bgr8" => FrameEncoding::Bgr8,
            _ => FrameEncoding::Jpeg { quality: self.jpeg_quality },
        };
        config.stall_timeout = Duration::from_millis(self.stall_timeout_ms);
        config.backoff_initial = Duration::from_millis(self.backoff_initial_ms);
        config.backoff_max = Duration::from_millis(self.backoff_max_ms);
        config.realtime = self.realtime;
        config.realtime_speed = self.realtime_speed;
        config.looping = self.looping;
        config.pace_timeout = Duration::from_millis(self.pace_timeout_ms);
        config.validate().map_err(|e| e.to_string())?;
        Ok((config, tls))
    }
}

/// Puts each camera's own encoding and realtime on it; a setting for a camera that is not
/// configured is a mistake, said in one line.
fn per_camera_settings(
    cameras: &mut [CameraConfig],
    encodings: &[(pump_bus::subject::CameraId, String)],
    realtime: &[(pump_bus::subject::CameraId, String)],
) -> Result<(), String> {
    let camera = |id: &pump_bus::subject::CameraId, what: &str| {
        let known = cameras.iter().position(|c| &c.id == id);
        known.ok_or_else(|| format!("{what} for camera {id}, which is not one of --camera"))
    };
    let mut set = Vec::new();
    for (id, value) in encodings {
        set.push((camera(id, "--camera-encoding")?, Some(pump_capture::config::parse_encoding(value)?), None));
    }
    for (id, value) in realtime {
        let on = match value.as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => return Err(format!("--camera-realtime {id}={other}: expected true or false")),
        };
        set.push((camera(id, "--camera-realtime")?, None, Some(on)));
    }
    for (i, encoding, on) in set {
        cameras[i].encoding = encoding.or(cameras[i].encoding);
        cameras[i].realtime = on.or(cameras[i].realtime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_takes_its_own_encoding_and_realtime() {
        let mut cams = vec![parse_camera("a=rtsp://h/1").unwrap_or_else(|e| panic!("{e}"))];
        let id = cams[0].id.clone();
        let enc = vec![(id.clone(), "jpeg:70".to_string())];
        let rt = vec![(id, "true".to_string())];
        per_camera_settings(&mut cams, &enc, &rt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((cams[0].encoding, cams[0].realtime), (Some(FrameEncoding::Jpeg { quality: 70 }), Some(true)));
        let bad = vec![(cams[0].id.clone(), "maybe".to_string())];
        assert!(per_camera_settings(&mut cams, &[], &bad).unwrap_err().contains("expected true or false"));
        let worse = vec![(cams[0].id.clone(), "png".to_string())];
        assert!(per_camera_settings(&mut cams, &worse, &[]).unwrap_err().contains("expected auto, bgr8"));
    }
}
