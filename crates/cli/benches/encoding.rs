//! `just bench`: how a frame should travel from capture to inference. For each candidate
//! encoding, on the frames of a clip: payload bytes, encode and decode ms, and how far the poses
//! found in the decoded pixels are from the poses found in the camera's own pixels (the parity
//! tolerances: same people, boxes within 1 px, keypoints with confidence ≥ 0.5 within 1.5 px).
//! Run at the clip's size and at 1080p (the clip scaled up). Not a test: nothing asserts.
//!
//! `cargo bench -p pump-cli --bench encoding -- [CLIP] [--every N]`

use std::path::PathBuf;
use std::time::Instant;

use opencv::core::{Mat, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc, videoio};
use pump_pose::{EngineConfig, ImageView, Pose, PoseEngine};

#[derive(Clone, Copy)]
enum Codec {
    Bgr8,
    Png(i32),
    /// OpenCV 4.6 (Debian 12) always subsamples chroma 4:2:0; choosing 4:4:4 needs OpenCV 4.7.
    Jpeg {
        quality: i32,
    },
}

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::Bgr8 => "raw BGR8".into(),
            Codec::Png(level) => format!("PNG (level {level})"),
            Codec::Jpeg { quality } => format!("JPEG q{quality} 4:2:0"),
        }
    }

    /// Encoded bytes, encode ms, and the decoded picture with decode ms.
    fn round_trip(self, mat: &Mat) -> anyhow::Result<(usize, f64, Mat, f64)> {
        let t0 = Instant::now();
        let bytes = match self {
            Codec::Bgr8 => return Ok((mat.total() * 3, 0.0, mat.try_clone()?, 0.0)),
            Codec::Png(level) => {
                let mut buf = Vector::<u8>::new();
                let p = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_PNG_COMPRESSION, level]);
                imgcodecs::imencode(".png", mat, &mut buf, &p)?;
                buf
            }
            Codec::Jpeg { quality } => {
                let mut buf = Vector::<u8>::new();
                let p = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
                imgcodecs::imencode(".jpg", mat, &mut buf, &p)?;
                buf
            }
        };
        let enc = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let decoded = imgcodecs::imdecode(&bytes, imgcodecs::IMREAD_COLOR)?;
        Ok((bytes.len(), enc, decoded, t1.elapsed().as_secs_f64() * 1e3))
    }
}

fn poses(engine: &mut PoseEngine, mat: &Mat) -> anyhow::Result<Vec<Pose>> {
    let (w, h) = (mat.cols() as usize, mat.rows() as usize);
    let view = ImageView::new(mat.data_bytes()?, w, h, w * 3)?;
    Ok(engine.detect(&view)?.0)
}

#[derive(Default)]
struct Parity {
    frames: usize,
    people_differ: usize,
    box_max: f32,
    kp_max: f32,
    kp_over: usize,
    kp_total: usize,
}

impl Parity {
    fn add(&mut self, want: &[Pose], got: &[Pose]) {
        self.frames += 1;
        if want.len() != got.len() {
            self.people_differ += 1;
            return;
        }
        for w in want {
            // The nearest person by box: NMS may order near-equal scores differently.
            let Some(g) = got.iter().min_by(|a, b| box_dist(w, a).total_cmp(&box_dist(w, b))) else { continue };
            self.box_max = self.box_max.max(box_dist(w, g));
            for (kw, kg) in w.keypoints.iter().zip(&g.keypoints) {
                if kw.confidence >= 0.5 {
                    let d = ((kw.x - kg.x).powi(2) + (kw.y - kg.y).powi(2)).sqrt();
                    self.kp_max = self.kp_max.max(d);
                    self.kp_total += 1;
                    self.kp_over += usize::from(d > 1.5);
                }
            }
        }
    }

    fn within(&self) -> bool {
        self.people_differ == 0 && self.box_max <= 1.0 && self.kp_max <= 1.5
    }
}

fn box_dist(a: &Pose, b: &Pose) -> f32 {
    [a.bbox.x1 - b.bbox.x1, a.bbox.y1 - b.bbox.y1, a.bbox.x2 - b.bbox.x2, a.bbox.y2 - b.bbox.y2]
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut clip = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/squat_5reps_15fps.mp4"));
    let mut every = 6usize;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--every" => every = it.next().and_then(|v| v.parse().ok()).unwrap_or(every).max(1),
            _ => clip = PathBuf::from(a),
        }
    }
    let mut cap = videoio::VideoCapture::from_file(&*clip.to_string_lossy(), videoio::CAP_FFMPEG)?;
    let mut frames = Vec::new();
    let mut mat = Mat::default();
    let mut i = 0usize;
    while cap.read(&mut mat)? && !mat.empty() {
        if i.is_multiple_of(every) {
            frames.push(mat.try_clone()?);
        }
        i += 1;
    }
    anyhow::ensure!(!frames.is_empty(), "no frames in {}", clip.display());
    let mut engine = PoseEngine::load(&EngineConfig::default())?;
    let codecs = [
        Codec::Jpeg { quality: 90 },
        Codec::Jpeg { quality: 95 },
        Codec::Jpeg { quality: 100 },
        Codec::Png(1),
        Codec::Bgr8,
    ];
    println!("encoding bench: {} ({} frames, every {every}th)", clip.display(), frames.len());
    for (label, height) in [("clip size", 0), ("1080p", 1080)] {
        let sized: Vec<Mat> = frames
            .iter()
            .map(|f| {
                if height == 0 {
                    return f.try_clone();
                }
                // Scaled to 1080 rows, padded to 1920 columns: a 1080p camera's frame.
                let w = (f.cols() as f64 * height as f64 / f.rows() as f64).round() as i32;
                let mut scaled = Mat::default();
                imgproc::resize(f, &mut scaled, Size::new(w, height), 0.0, 0.0, imgproc::INTER_CUBIC)?;
                let mut padded = Mat::default();
                let left = (1920 - w).max(0) / 2;
                opencv::core::copy_make_border(
                    &scaled,
                    &mut padded,
                    0,
                    0,
                    left,
                    (1920 - w).max(0) - left,
                    opencv::core::BORDER_REFLECT,
                    opencv::core::Scalar::default(),
                )?;
                Ok(padded)
            })
            .collect::<Result<_, opencv::Error>>()?;
        let (w, h) = (sized[0].cols(), sized[0].rows());
        println!("\n{label}: {w}×{h}");
        println!(
            "| encoding | payload KB | encode ms | decode ms | people differ | box max px | kp max px | kp > 1.5 px | parity |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let reference: Vec<Vec<Pose>> = sized.iter().map(|m| poses(&mut engine, m)).collect::<anyhow::Result<_>>()?;
        for codec in codecs {
            let (mut bytes, mut enc, mut dec) = (0usize, 0.0, 0.0);
            let mut parity = Parity::default();
            for (m, want) in sized.iter().zip(&reference) {
                let (b, e, decoded, d) = codec.round_trip(m)?;
                bytes += b;
                enc += e;
                dec += d;
                parity.add(want, &poses(&mut engine, &decoded)?);
            }
            let n = sized.len() as f64;
            println!(
                "| {} | {:.0} | {:.1} | {:.1} | {} of {} | {:.2} | {:.2} | {} of {} | {} |",
                codec.name(),
                bytes as f64 / n / 1024.0,
                enc / n,
                dec / n,
                parity.people_differ,
                parity.frames,
                parity.box_max,
                parity.kp_max,
                parity.kp_over,
                parity.kp_total,
                if parity.within() { "yes" } else { "no" }
            );
        }
    }
    camera_jpeg(&mut engine, &frames)?;
    Ok(())
}

/// An MJPEG camera's frames under `--encoding auto` (the default): its JPEGs go on the bus as
/// they came and inference decodes them (OpenCV, libjpeg-turbo), where `bgr8` has capture decode
/// them (FFmpeg's own MJPEG decoder). Same JPEGs, two decoders: how far apart are the poses?
fn camera_jpeg(engine: &mut PoseEngine, frames: &[Mat]) -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("pump-encoding-bench-{}.avi", std::process::id()));
    let avi = path.to_string_lossy().to_string();
    let size = Size::new(frames[0].cols(), frames[0].rows());
    let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G')?;
    let mut writer = videoio::VideoWriter::new_with_backend(&avi, videoio::CAP_OPENCV_MJPEG, fourcc, 15.0, size, true)?;
    for f in frames {
        writer.write(f)?;
    }
    writer.release()?;
    let (mut decoded, mut raw) = (
        videoio::VideoCapture::from_file(&avi, videoio::CAP_FFMPEG)?,
        videoio::VideoCapture::from_file(&avi, videoio::CAP_FFMPEG)?,
    );
    anyhow::ensure!(raw.set(videoio::CAP_PROP_FORMAT, -1.0)?, "FFmpeg's raw mode refused");
    let (mut by_ffmpeg, mut packet) = (Mat::default(), Mat::default());
    let (mut parity, mut pixel_max, mut dec) = (Parity::default(), 0.0f64, 0.0);
    while decoded.read(&mut by_ffmpeg)? && raw.read(&mut packet)? && !by_ffmpeg.empty() {
        let t0 = Instant::now();
        let by_opencv = imgcodecs::imdecode(&Vector::<u8>::from_slice(packet.data_bytes()?), imgcodecs::IMREAD_COLOR)?;
        dec += t0.elapsed().as_secs_f64() * 1e3;
        let mut diff = Mat::default();
        opencv::core::absdiff(&by_ffmpeg, &by_opencv, &mut diff)?;
        let mut max = 0.0;
        opencv::core::min_max_loc(&diff.reshape(1, 0)?, None, Some(&mut max), None, None, &opencv::core::no_array())?;
        pixel_max = pixel_max.max(max);
        parity.add(&poses(engine, &by_ffmpeg)?, &poses(engine, &by_opencv)?);
    }
    println!(
        "\nan MJPEG camera's own JPEGs ({} frames): decoded in inference (auto) against decoded by FFmpeg in \
         capture (bgr8): {:.1} ms a decode, pixels differ by at most {pixel_max}, people differ in {} of {}, \
         box max {:.2} px, keypoints max {:.2} px ({} of {} over 1.5 px)",
        parity.frames,
        dec / parity.frames.max(1) as f64,
        parity.people_differ,
        parity.frames,
        parity.box_max,
        parity.kp_max,
        parity.kp_over,
        parity.kp_total
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
