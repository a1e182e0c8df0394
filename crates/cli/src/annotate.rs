//! `pump detect --save` / `--save-dir`: the frames with their poses drawn on, written as the
//! source was (a video as a video, an image as an image), as Ultralytics' `save=True` does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use opencv::core::{Mat, Point, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc, videoio};
use pump_capture::{MediaKind, MediaSource};
use pump_pose::Pose;
use pump_pose::{NUM_KEYPOINTS, SKELETON};

/// Keypoints under this confidence are not drawn (Ultralytics' plotting threshold).
const MIN_CONFIDENCE: f32 = 0.5;

/// Where each source's drawn frames go.
#[derive(Debug, Clone)]
pub struct SavePlan {
    targets: Vec<PathBuf>,
}

impl SavePlan {
    /// From `--save OUT` (one source) or `--save-dir DIR` (each under its own name); `None` when
    /// neither is given. Checked before any frame is read.
    pub fn new(save: Option<&Path>, save_dir: Option<&Path>, sources: &[MediaSource]) -> Result<Option<Self>> {
        let targets = match (save, save_dir) {
            (None, None) => return Ok(None),
            (Some(out), _) => {
                if sources.len() != 1 {
                    bail!("--save takes one SOURCE ({} given); use --save-dir DIR for several", sources.len());
                }
                if sources[0].kind() == MediaKind::Video {
                    fourcc_for(out)?;
                }
                vec![out.to_path_buf()]
            }
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                sources
                    .iter()
                    .map(|s| {
                        let name = s.path().file_name().map(PathBuf::from).unwrap_or_else(|| "out".into());
                        match s.kind() {
                            MediaKind::Image => dir.join(name),
                            MediaKind::Video => dir.join(name).with_extension("mp4"),
                        }
                    })
                    .collect()
            }
        };
        Ok(Some(Self { targets }))
    }

    pub fn target(&self, source: usize) -> &Path {
        &self.targets[source]
    }
}

/// The codec a video file gets from its extension.
fn fourcc_for(path: &Path) -> Result<i32> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let code = match ext.as_str() {
        "mp4" | "m4v" | "mov" => ['m', 'p', '4', 'v'],
        "avi" => ['M', 'J', 'P', 'G'],
        _ => bail!("{}: an annotated video is written as .mp4 or .avi", path.display()),
    };
    Ok(videoio::VideoWriter::fourcc(code[0], code[1], code[2], code[3])?)
}

/// Writes one source's drawn frames: a video file opened at its first frame, or an image.
pub struct Sink {
    path: PathBuf,
    fps: f64,
    video: Option<videoio::VideoWriter>,
    kind: MediaKind,
}

impl Sink {
    pub fn new(path: &Path, source: &MediaSource) -> Self {
        let fps = if source.fps() > 0.0 { source.fps() } else { 30.0 };
        Self { path: path.to_path_buf(), fps, video: None, kind: source.kind() }
    }

    /// Draws `poses` on `frame` and writes it.
    pub fn write(&mut self, frame: &mut Mat, poses: &[Pose]) -> Result<()> {
        draw(frame, poses)?;
        let what = || format!("cannot write {}", self.path.display());
        if self.kind == MediaKind::Image {
            let ok = imgcodecs::imwrite(&*self.path.to_string_lossy(), frame, &Vector::new()).with_context(what)?;
            anyhow::ensure!(ok, "{}: no image writer for this extension", self.path.display());
            return Ok(());
        }
        if self.video.is_none() {
            let size = Size::new(frame.cols(), frame.rows());
            let writer = videoio::VideoWriter::new_with_backend(
                &*self.path.to_string_lossy(),
                videoio::CAP_FFMPEG,
                fourcc_for(&self.path)?,
                self.fps,
                size,
                true,
            )
            .with_context(what)?;
            anyhow::ensure!(writer.is_opened()?, "{}: the video writer would not open", self.path.display());
            self.video = Some(writer);
        }
        if let Some(v) = self.video.as_mut() {
            v.write(frame).with_context(what)?;
        }
        Ok(())
    }

    /// Closes the file (a video's index is written here).
    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(mut v) = self.video.take() {
            v.release()?;
        }
        Ok(self.path)
    }
}

/// Each person's box, bones and keypoints, sized to the frame.
pub fn draw(frame: &mut Mat, poses: &[Pose]) -> Result<()> {
    let thick = (frame.rows().min(frame.cols()) / 240).max(1);
    let (bone, joint, boxc) =
        (Scalar::new(0.0, 255.0, 0.0, 0.0), Scalar::new(0.0, 64.0, 255.0, 0.0), Scalar::new(255.0, 160.0, 0.0, 0.0));
    for p in poses {
        let b = &p.bbox;
        let rect = Rect::new(b.x1 as i32, b.y1 as i32, (b.x2 - b.x1).max(1.0) as i32, (b.y2 - b.y1).max(1.0) as i32);
        imgproc::rectangle(frame, rect, boxc, thick, imgproc::LINE_8, 0)?;
        let at = |i: usize| {
            let k = &p.keypoints[i];
            (k.confidence >= MIN_CONFIDENCE).then(|| Point::new(k.x.round() as i32, k.y.round() as i32))
        };
        for (a, c) in SKELETON {
            if let (Some(a), Some(c)) = (at(a), at(c)) {
                imgproc::line(frame, a, c, bone, thick, imgproc::LINE_AA, 0)?;
            }
        }
        for i in 0..NUM_KEYPOINTS {
            if let Some(k) = at(i) {
                imgproc::circle(frame, k, thick + 2, joint, -1, imgproc::LINE_AA, 0)?;
            }
        }
    }
    Ok(())
}
