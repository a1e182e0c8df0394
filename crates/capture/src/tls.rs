//! Certificates of `https` and `rtsps` cameras. FFmpeg opens TLS without verifying the peer
//! unless asked (`tls_verify`), so an attacker on the camera network could feed a camera's
//! stream — and FFmpeg's parsers — from anywhere. pump asks: an https camera's certificate must
//! chain to the system's CAs (or `--camera-ca-file`) and name its host. FFmpeg's rtsps passes no
//! options to its TLS connection (libavformat's `ff_rtsp_connect` opens it with none), so an
//! rtsps camera cannot be verified at all: it is refused unless `--camera-tls-insecure` says
//! to accept it unverified.

use std::path::PathBuf;

use crate::camera::SourceSpec;
use crate::config::CameraConfig;

/// The variable OpenCV reads FFmpeg's options from, at each open (`key;value|key;value`).
pub const FFMPEG_OPTIONS: &str = "OPENCV_FFMPEG_CAPTURE_OPTIONS";

/// How camera certificates are checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraTls {
    /// CA certificates (PEM) cameras must be signed by; `None`: the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a camera with a self-signed one), and rtsps cameras.
    pub insecure: bool,
}

impl CameraTls {
    /// FFmpeg's options with verification added to `existing` (the user's own, kept; a
    /// `tls_verify` of theirs wins).
    pub fn ffmpeg_options(&self, existing: Option<&str>) -> String {
        let mut parts: Vec<String> =
            existing.unwrap_or("").split('|').filter(|p| !p.is_empty()).map(String::from).collect();
        let has = |key: &str, parts: &[String]| parts.iter().any(|p| p.split(';').next() == Some(key));
        if !self.insecure && !has("tls_verify", &parts) {
            parts.push("tls_verify;1".into());
            if let (Some(ca), false) = (&self.ca_file, has("ca_file", &parts)) {
                parts.push(format!("ca_file;{}", ca.display()));
            }
        }
        parts.join("|")
    }

    /// A camera this cannot open safely, in one line; `None` when every one can be.
    pub fn refuses(&self, cameras: &[CameraConfig]) -> Option<String> {
        if let Some(ca) = &self.ca_file {
            if let Err(e) = std::fs::read(ca) {
                return Some(format!("cannot read the camera CA file {}: {e}", ca.display()));
            }
        }
        if self.insecure {
            return None;
        }
        cameras.iter().find_map(|c| match &c.source {
            SourceSpec::Url(u) if u.to_ascii_lowercase().starts_with("rtsps://") => Some(format!(
                "camera {}: FFmpeg cannot verify an rtsps camera's certificate; use rtsp on a trusted network, \
                 https, or --camera-tls-insecure to accept it unverified",
                c.id
            )),
            _ => None,
        })
    }

    /// Sets FFmpeg's options for this process: call before any camera is opened.
    pub fn apply(&self) {
        let existing = std::env::var(FFMPEG_OPTIONS).ok();
        let options = self.ffmpeg_options(existing.as_deref());
        if self.insecure {
            tracing::warn!("camera certificates are not verified (--camera-tls-insecure)");
        }
        if !options.is_empty() {
            // Before any thread opens a camera: nothing else reads the environment meanwhile.
            std::env::set_var(FFMPEG_OPTIONS, options);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_is_asked_of_ffmpeg_unless_told_otherwise() {
        let verify = CameraTls::default();
        assert_eq!(verify.ffmpeg_options(None), "tls_verify;1");
        assert_eq!(verify.ffmpeg_options(Some("threads;1")), "threads;1|tls_verify;1");
        assert_eq!(verify.ffmpeg_options(Some("tls_verify;0")), "tls_verify;0", "the user's own wins");
        let ca = CameraTls { ca_file: Some("/etc/cam-ca.pem".into()), insecure: false };
        assert_eq!(ca.ffmpeg_options(None), "tls_verify;1|ca_file;/etc/cam-ca.pem");
        let insecure = CameraTls { insecure: true, ..Default::default() };
        assert_eq!(insecure.ffmpeg_options(Some("threads;1")), "threads;1");
    }

    #[test]
    fn an_rtsps_camera_needs_to_be_accepted_unverified() {
        let cam = |s: &str| crate::config::parse_camera(s).unwrap_or_else(|e| panic!("{e}"));
        let cams = [cam("a=rtsp://h/1"), cam("b=https://h/2"), cam("c=RTSPS://h/3")];
        let why = CameraTls::default().refuses(&cams).unwrap_or_default();
        assert!(why.contains("camera c") && why.contains("--camera-tls-insecure"), "{why}");
        assert_eq!(CameraTls::default().refuses(&cams[..2]), None);
        assert_eq!(CameraTls { insecure: true, ..Default::default() }.refuses(&cams), None);
        let missing = CameraTls { ca_file: Some("/nonexistent/ca.pem".into()), insecure: false };
        assert!(missing.refuses(&cams[..1]).is_some_and(|w| w.contains("/nonexistent/ca.pem")));
    }
}
