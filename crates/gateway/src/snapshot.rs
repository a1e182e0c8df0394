//! Snapshots: a camera's newest frame as JPEG, optionally with the skeleton drawn on, without
//! OpenCV (the gateway carries neither OpenCV nor ONNX Runtime). Each frame is encoded at most
//! once per variant, however many clients ask.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use pump_proto::{Encoding, Frame, PoseFrame};

/// Keypoints under this confidence are not drawn.
const MIN_DRAW_CONFIDENCE: f32 = 0.5;
const JPEG_QUALITY: u8 = 85;

/// COCO-17 bones: `pump_pose::SKELETON`, copied so the gateway does not depend on the pose engine
/// (and through it on ONNX Runtime).
const SKELETON: [(usize, usize); 16] = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
];

/// Which snapshot: (camera, with overlay).
type Variant = (String, bool);
/// The frame a cached JPEG was made from (id, capture time), and the JPEG.
type Cached = (u64, i64, Bytes);

/// The newest JPEG of each camera and variant.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    entries: Mutex<HashMap<Variant, Cached>>,
    /// JPEG encodes done (the cache's measure of success).
    pub encodes: std::sync::atomic::AtomicU64,
}

fn rgb_of(frame: &Frame) -> Result<Vec<u8>, String> {
    match Encoding::try_from(frame.encoding) {
        Ok(Encoding::Jpeg) => {
            let mut d = jpeg_decoder::Decoder::new(&frame.data[..]);
            let px = d.decode().map_err(|e| format!("corrupt JPEG: {e}"))?;
            match d.info().map(|i| i.pixel_format) {
                Some(jpeg_decoder::PixelFormat::RGB24) => Ok(px),
                Some(jpeg_decoder::PixelFormat::L8) => Ok(px.iter().flat_map(|v| [*v, *v, *v]).collect()),
                other => Err(format!("unsupported JPEG pixel format {other:?}")),
            }
        }
        Ok(Encoding::Bgr8) => Ok(frame.data.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect()),
        _ => Err("unknown frame encoding".into()),
    }
}

fn put(rgb: &mut [u8], w: i64, h: i64, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && x < w && y < h {
        let i = ((y * w + x) * 3) as usize;
        rgb[i..i + 3].copy_from_slice(&c);
    }
}

fn line(rgb: &mut [u8], w: i64, h: i64, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        for (ox, oy) in [(0, 0), (1, 0), (0, 1)] {
            put(rgb, w, h, x + ox, y + oy, c);
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Draws the people of `poses` onto RGB pixels.
fn draw(rgb: &mut [u8], w: u32, h: u32, poses: &PoseFrame) {
    let (w, h) = (i64::from(w), i64::from(h));
    for p in &poses.people {
        let k = &p.keypoints;
        for &(a, b) in &SKELETON {
            if let (Some(ka), Some(kb)) = (k.get(a), k.get(b)) {
                if ka.confidence >= MIN_DRAW_CONFIDENCE && kb.confidence >= MIN_DRAW_CONFIDENCE {
                    line(rgb, w, h, (ka.x as i64, ka.y as i64), (kb.x as i64, kb.y as i64), [0, 255, 0]);
                }
            }
        }
        for kp in k.iter().filter(|kp| kp.confidence >= MIN_DRAW_CONFIDENCE) {
            for dy in -2..=2 {
                for dx in -2..=2 {
                    put(rgb, w, h, kp.x as i64 + dx, kp.y as i64 + dy, [255, 64, 0]);
                }
            }
        }
    }
}

impl SnapshotCache {
    /// The JPEG of `frame` (with `poses` drawn when given), encoded once per frame and variant.
    pub fn jpeg(&self, frame: &Frame, poses: Option<&PoseFrame>) -> Result<Bytes, String> {
        let key = (frame.camera.clone(), poses.is_some());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, ts, jpeg)) = entries.get(&key) {
            if *id == frame.frame_id && *ts == frame.capture_ts_ns {
                return Ok(jpeg.clone());
            }
        }
        let jpeg = if poses.is_none() && frame.encoding == Encoding::Jpeg as i32 {
            // Already a JPEG: served as captured, nothing to encode.
            frame.data.clone()
        } else {
            let mut rgb = rgb_of(frame)?;
            if rgb.len() != frame.width as usize * frame.height as usize * 3 {
                return Err("frame size does not match its pixels".into());
            }
            if let Some(p) = poses {
                draw(&mut rgb, frame.width, frame.height, p);
            }
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
                .encode(&rgb, frame.width as u16, frame.height as u16, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| e.to_string())?;
            self.encodes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Bytes::from(out)
        };
        entries.insert(key, (frame.frame_id, frame.capture_ts_ns, jpeg.clone()));
        Ok(jpeg)
    }
}
