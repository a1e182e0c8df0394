//! Image and video files as frame sources.
//!
//! A file is opened as an image when OpenCV has a decoder for its signature, otherwise as a video
//! through FFmpeg. Every decoded frame is returned in order; none are skipped.

use std::path::{Path, PathBuf};

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::{imgcodecs, videoio};

use crate::error::{Error, Result};

/// What a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

/// Position of a decoded frame in its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    pub index: u64,
    /// Seconds from the start, from the media's own timing (0 for an image).
    pub ts: f64,
}

/// An opened image or video file.
pub struct MediaSource {
    path: PathBuf,
    kind: MediaKind,
    /// The decoded image, handed out once.
    image: Option<Mat>,
    video: Option<videoio::VideoCapture>,
    fps: f64,
    frame_count: Option<u64>,
    next_index: u64,
    timeline: crate::timeline::Timeline,
}

impl std::fmt::Debug for MediaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSource")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("fps", &self.fps)
            .field("frame_count", &self.frame_count)
            .finish_non_exhaustive()
    }
}

/// Returns true when the first 4 KiB are printable UTF-8 text (or the file is empty).
pub(crate) fn looks_like_text(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if file.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    // A multi-byte character cut at the 4 KiB boundary is still text.
    let text = match std::str::from_utf8(&head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
        Err(_) => return false,
    };
    text.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

impl MediaSource {
    /// Opens `path`, checking it exists, is readable and decodes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path: path.clone() },
            _ => Error::Unreadable { path: path.clone(), source: e },
        })?;
        if !meta.is_file() {
            return Err(Error::NotAFile { path });
        }
        // Opening for read surfaces permission problems before OpenCV hides them behind "empty".
        std::fs::File::open(&path).map_err(|e| Error::Unreadable { path: path.clone(), source: e })?;
        let cv = |source| Error::OpenCv { path: path.clone(), source };
        let name = path.to_string_lossy().to_string();

        if imgcodecs::have_image_reader(&name).map_err(cv)? {
            let img = imgcodecs::imread(&name, imgcodecs::IMREAD_COLOR).map_err(cv)?;
            if img.empty() {
                return Err(Error::NotMedia { path });
            }
            return Ok(Self {
                path,
                kind: MediaKind::Image,
                image: Some(img),
                video: None,
                fps: 0.0,
                frame_count: Some(1),
                next_index: 0,
                timeline: crate::timeline::Timeline::file(0.0),
            });
        }

        // FFmpeg "plays" text files (its tty demuxer renders them as ANSI art); no real
        // container is plain text, so text is refused before FFmpeg sees it.
        if looks_like_text(&path) {
            return Err(Error::NotMedia { path });
        }
        let cap = videoio::VideoCapture::from_file(&name, videoio::CAP_FFMPEG).map_err(cv)?;
        if !cap.is_opened().map_err(cv)? {
            return Err(Error::NotMedia { path });
        }
        let fps = cap.get(videoio::CAP_PROP_FPS).map_err(cv)?;
        let count = cap.get(videoio::CAP_PROP_FRAME_COUNT).map_err(cv)?;
        let fps = if fps.is_finite() && fps > 0.0 { fps } else { 0.0 };
        Ok(Self {
            path,
            kind: MediaKind::Video,
            image: None,
            video: Some(cap),
            fps,
            frame_count: (count.is_finite() && count >= 1.0).then_some(count as u64),
            next_index: 0,
            timeline: crate::timeline::Timeline::file(fps),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    /// The container's frame rate, 0 when unknown or for an image.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// The number of frames the container announces (an estimate for some formats).
    pub fn frame_count(&self) -> Option<u64> {
        self.frame_count
    }

    /// Decodes the next frame into `frame` (reusing its buffer); `None` at the end.
    ///
    /// A video that ends before its first frame is reported as corrupt.
    pub fn read(&mut self, frame: &mut Mat) -> Result<Option<FrameInfo>> {
        let index = self.next_index;
        let cv = |source| Error::OpenCv { path: self.path.clone(), source };
        let got = match (&mut self.image, &mut self.video) {
            (Some(_), _) => {
                if let Some(img) = self.image.take() {
                    *frame = img;
                }
                Some(FrameInfo { index, ts: 0.0 })
            }
            (None, Some(cap)) => {
                let ok = cap.read(frame).map_err(cv)?;
                if ok && !frame.empty() {
                    let ms = cap.get(videoio::CAP_PROP_POS_MSEC).map_err(cv)?;
                    let media = (ms.is_finite() && ms >= 0.0).then_some((ms * 1e6) as i64);
                    // The container's clock, with a frame period where it goes wrong (OpenCV
                    // reports 0 for some last frames): never backwards.
                    let ts = self.timeline.next(media, 0) as f64 / 1e9;
                    Some(FrameInfo { index, ts })
                } else {
                    if index == 0 {
                        return Err(Error::NoFrames { path: self.path.clone() });
                    }
                    // Release the decoder now rather than when the source is dropped.
                    self.video = None;
                    None
                }
            }
            (None, None) => None,
        };
        if got.is_some() {
            self.next_index += 1;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_told_from_binary() {
        let dir = std::env::temp_dir().join(format!("pump-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("a.txt");
        std::fs::write(&text, "squat 5x5\nbench 3x8 — 80 kg\n").unwrap();
        assert!(looks_like_text(&text));
        let bin = dir.join("a.bin");
        std::fs::write(&bin, [0u8, 0, 0, 0x18, b'f', b't', b'y', b'p']).unwrap();
        assert!(!looks_like_text(&bin));
        assert!(matches!(MediaSource::open(&text), Err(Error::NotMedia { .. })));
        assert!(matches!(MediaSource::open(dir.join("missing.mp4")), Err(Error::NotFound { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
