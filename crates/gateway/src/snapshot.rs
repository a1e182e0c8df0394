//! Snapshots: a camera's newest frame as JPEG, optionally with the skeleton drawn on, without
//! OpenCV (the gateway carries neither OpenCV nor ONNX Runtime). Each frame is encoded at most
//! once per variant, however many clients ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pump_bus::frame::{CheckedFrame, Pixels};
use pump_proto::{Frame, PoseFrame};
use pump_types::SKELETON;

/// Keypoints under this confidence are not drawn.
const MIN_DRAW_CONFIDENCE: f32 = 0.5;
const JPEG_QUALITY: u8 = 85;

/// What is drawn on a frame: the skeletons of a pose frame, and a caption (the preview's rep
/// count) in the top left corner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overlay<'a> {
    pub poses: Option<&'a PoseFrame>,
    pub caption: Option<&'a str>,
    /// Where the athlete of the set in progress is: the person there is drawn bright, everyone
    /// else dimmed, so a coach sees who is counted. `None`: everyone alike.
    pub athlete: Option<pump_proto::Box>,
}

impl Overlay<'_> {
    /// What the drawing depends on besides the frame: a cached JPEG is reused only for the same.
    fn stamp(&self) -> String {
        format!("{:?}/{:?}/{:?}", self.poses.map(|p| (p.frame_id, p.publish_ts_ns)), self.caption, self.athlete)
    }
}

/// The overlap of two boxes over their union (0 when either is empty).
fn iou(a: &pump_proto::Box, b: &pump_proto::Box) -> f32 {
    let (w, h) = ((a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0), (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0));
    let area = |r: &pump_proto::Box| (r.x2 - r.x1).max(0.0) * (r.y2 - r.y1).max(0.0);
    let union = area(a) + area(b) - w * h;
    if union > 0.0 {
        w * h / union
    } else {
        0.0
    }
}

/// Which person of `poses` is the athlete: the one whose box overlaps `athlete` most (at least
/// a third); `None` when no one does or there is no set in progress.
fn athlete_index(poses: &PoseFrame, athlete: Option<&pump_proto::Box>) -> Option<usize> {
    let a = athlete?;
    let scored = poses.people.iter().enumerate().filter_map(|(i, p)| p.r#box.as_ref().map(|b| (i, iou(a, b))));
    scored.filter(|(_, o)| *o >= 0.33).max_by(|x, y| x.1.total_cmp(&y.1)).map(|(i, _)| i)
}

/// Whether `poses` may be drawn on `frame`: only the pose of that very frame (same id and
/// capture time). Any other — even 100 ms older — draws the athlete where they no longer are.
pub fn pose_fits(poses: &PoseFrame, frame: &Frame) -> bool {
    !poses.end_of_stream && poses.frame_id == frame.frame_id && poses.capture_ts_ns == frame.capture_ts_ns
}

/// Which snapshot: (camera, with skeleton, with caption).
type Variant = (String, bool, bool);
/// The frame and overlay a cached JPEG was made from (id, capture time, stamp), and the JPEG.
type Cached = (u64, i64, String, Bytes);

/// The newest JPEG of each camera and variant.
#[derive(Debug)]
pub struct SnapshotCache {
    /// Each variant has its own slot: requests for the same one wait for a single encode, while
    /// other cameras encode in parallel.
    entries: Mutex<HashMap<Variant, Arc<Mutex<Option<Cached>>>>>,
    /// JPEG encodes done (the cache's measure of success).
    pub encodes: std::sync::atomic::AtomicU64,
    /// Encodes at once, one per core: 64 callers of a 4K camera queue here, asleep, instead of
    /// taking 64 threads of the blocking pool and every core from the gateway's own work.
    encoders: tokio::sync::Semaphore,
}

impl Default for SnapshotCache {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { entries: Mutex::default(), encodes: Default::default(), encoders: tokio::sync::Semaphore::new(cores) }
    }
}

/// What to draw, owned, for an encode on another thread (see [`Overlay`]).
#[derive(Debug, Clone, Default)]
pub struct Drawing {
    pub poses: Option<Arc<PoseFrame>>,
    pub caption: Option<String>,
    pub athlete: Option<pump_proto::Box>,
}

fn rgb_of(frame: &CheckedFrame) -> Result<Vec<u8>, String> {
    match frame.pixels() {
        Pixels::Jpeg(data) => {
            let mut d = jpeg_decoder::Decoder::new(data);
            let px = d.decode().map_err(|e| format!("corrupt JPEG: {e}"))?;
            match d.info().map(|i| i.pixel_format) {
                Some(jpeg_decoder::PixelFormat::RGB24) => Ok(px),
                Some(jpeg_decoder::PixelFormat::L8) => Ok(px.iter().flat_map(|v| [*v, *v, *v]).collect()),
                other => Err(format!("unsupported JPEG pixel format {other:?}")),
            }
        }
        Pixels::Bgr8(data) => Ok(data.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect()),
        Pixels::EndOfStream => Err("an end-of-stream marker has no pixels".into()),
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

/// The part of the segment a–b inside the `w`×`h` frame (Liang–Barsky), in whole pixels; `None`
/// when it misses the frame or a coordinate is not finite. Poses come off the bus: a keypoint at
/// x = 1e15 must cost what a visible line costs, not a walk of 1e15 steps.
fn clip(a: (f32, f32), b: (f32, f32), w: i64, h: i64) -> Option<((i64, i64), (i64, i64))> {
    let (x0, y0, x1, y1) = (f64::from(a.0), f64::from(a.1), f64::from(b.0), f64::from(b.1));
    if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) || w <= 0 || h <= 0 {
        return None;
    }
    let (dx, dy) = (x1 - x0, y1 - y0);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, x0), (dx, (w - 1) as f64 - x0), (-dy, y0), (dy, (h - 1) as f64 - y0)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| ((x0 + t * dx).round() as i64, (y0 + t * dy).round() as i64);
    Some((at(t0), at(t1)))
}

/// Draws the people of `poses` onto RGB pixels.
fn draw(rgb: &mut [u8], w: u32, h: u32, poses: &PoseFrame, athlete: Option<&pump_proto::Box>) {
    let (w, h) = (i64::from(w), i64::from(h));
    let counted = athlete_index(poses, athlete);
    for (i, p) in poses.people.iter().enumerate() {
        // During a set, everyone but its athlete in grey: who is counted is plain to see.
        let dim = counted.is_some_and(|c| c != i);
        let (bone, joint) = if dim { ([150, 150, 150], [110, 110, 110]) } else { ([0, 255, 0], [255, 64, 0]) };
        let k = &p.keypoints;
        for &(a, b) in &SKELETON {
            if let (Some(ka), Some(kb)) = (k.get(a), k.get(b)) {
                if ka.confidence >= MIN_DRAW_CONFIDENCE && kb.confidence >= MIN_DRAW_CONFIDENCE {
                    if let Some((from, to)) = clip((ka.x, ka.y), (kb.x, kb.y), w, h) {
                        line(rgb, w, h, from, to, bone);
                    }
                }
            }
        }
        let inside = |x: f32, y: f32| {
            x.is_finite() && y.is_finite() && x > -3.0 && y > -3.0 && x < w as f32 + 3.0 && y < h as f32 + 3.0
        };
        for kp in k.iter().filter(|kp| kp.confidence >= MIN_DRAW_CONFIDENCE && inside(kp.x, kp.y)) {
            for dy in -2..=2 {
                for dx in -2..=2 {
                    put(rgb, w, h, kp.x as i64 + dx, kp.y as i64 + dy, joint);
                }
            }
        }
    }
}

/// Writes `text` (ASCII; others as blanks) at (x, y), `scale` pixels per font pixel, white on a
/// dark band so it reads on any frame.
/// Draws `text` in the top left corner: its first line at `scale` font pixels per glyph pixel,
/// the lines after it half as large, each on a darkened band.
fn caption(rgb: &mut [u8], w: u32, h: u32, text: &str, scale: i64) {
    let mut y0 = scale * 2;
    for (i, line) in text.lines().enumerate() {
        let s = if i == 0 { scale } else { (scale / 2).max(1) };
        if i > 0 {
            y0 += 2 * s;
        }
        caption_line(rgb, w, h, line, s, (scale * 2, y0));
        y0 += 10 * s;
    }
}

fn caption_line(rgb: &mut [u8], w: u32, h: u32, text: &str, scale: i64, (x0, y0): (i64, i64)) {
    let (w, h) = (i64::from(w), i64::from(h));
    let band_w = (text.len() as i64 * 8 + 4) * scale;
    for y in 0..12 * scale {
        for x in 0..band_w {
            let (px, py) = (x0 - 2 * scale + x, y0 - 2 * scale + y);
            if px >= 0 && py >= 0 && px < w && py < h {
                let i = ((py * w + px) * 3) as usize;
                for c in &mut rgb[i..i + 3] {
                    *c /= 4;
                }
            }
        }
    }
    for (n, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY.get(ch as usize).copied().unwrap_or_default();
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let x = x0 + (n as i64 * 8 + col) * scale + dx;
                            put(rgb, w, h, x, y0 + row as i64 * scale + dy, [255, 255, 255]);
                        }
                    }
                }
            }
        }
    }
}

/// `frame` as a JPEG with `overlay` drawn on (decoded and encoded again, whatever it came as).
pub fn render(frame: &CheckedFrame, overlay: Option<Overlay<'_>>) -> Result<Bytes, String> {
    let mut rgb = rgb_of(frame)?;
    if rgb.len() != frame.width as usize * frame.height as usize * 3 {
        return Err("frame size does not match its pixels".into());
    }
    if let Some(o) = overlay {
        if let Some(p) = o.poses {
            draw(&mut rgb, frame.width, frame.height, p, o.athlete.as_ref());
        }
        if let Some(text) = o.caption {
            // Readable on a phone and on a wall: about 1/20 of the frame height.
            let scale = i64::from(frame.height / 160).max(1);
            caption(&mut rgb, frame.width, frame.height, text, scale);
        }
    }
    let (Ok(width), Ok(height)) = (u16::try_from(frame.width), u16::try_from(frame.height)) else {
        return Err(format!("a {}x{} frame is too large for JPEG", frame.width, frame.height));
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
        .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(Bytes::from(out))
}

impl SnapshotCache {
    /// The JPEG of `frame` (with `overlay` drawn when given), encoded once per frame, variant and
    /// overlay content.
    pub fn jpeg(&self, frame: &Frame, overlay: Option<Overlay<'_>>) -> Result<Bytes, String> {
        let key = (
            frame.camera.clone(),
            overlay.is_some_and(|o| o.poses.is_some()),
            overlay.is_some_and(|o| o.caption.is_some()),
        );
        // Checked before the cache: a frame that lies about its size is never decoded, nor served.
        let frame = CheckedFrame::new(frame.clone(), pump_bus::frame::MAX_DIMENSION)?;
        let stamp = overlay.map(|o| o.stamp()).unwrap_or_default();
        let slot = self.entries.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        let mut cached = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, ts, st, jpeg)) = cached.as_ref() {
            if *id == frame.frame_id && *ts == frame.capture_ts_ns && *st == stamp {
                return Ok(jpeg.clone());
            }
        }
        let jpeg = if let (None, Pixels::Jpeg(_)) = (overlay, frame.pixels()) {
            // Already a JPEG: served as captured, nothing to encode.
            frame.data.clone()
        } else {
            let jpeg = render(&frame, overlay)?;
            self.encodes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            jpeg
        };
        *cached = Some((frame.frame_id, frame.capture_ts_ns, stamp, jpeg.clone()));
        Ok(jpeg)
    }

    /// [`Self::jpeg`] for async callers: the decode, drawing and encode (tens of milliseconds for
    /// a large frame) and the wait for another caller's encode of the same variant run on the
    /// blocking pool, never on a tokio worker, so health and every other request keep answering.
    pub async fn encode(self: &Arc<Self>, frame: Arc<Frame>, drawing: Option<Drawing>) -> Result<Bytes, String> {
        let _turn = self.encoders.acquire().await.map_err(|e| e.to_string())?;
        let cache = self.clone();
        tokio::task::spawn_blocking(move || {
            let overlay = drawing.as_ref().map(|d| Overlay {
                poses: d.poses.as_deref(),
                caption: d.caption.as_deref(),
                athlete: d.athlete,
            });
            cache.jpeg(&frame, overlay)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_proto::Encoding;

    fn gray_frame(id: u64) -> Frame {
        Frame {
            camera: "cam".into(),
            frame_id: id,
            capture_ts_ns: 1,
            width: 160,
            height: 120,
            encoding: Encoding::Bgr8 as i32,
            data: vec![128; 160 * 120 * 3].into(),
            ..Default::default()
        }
    }

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        jpeg_decoder::Decoder::new(jpeg).decode().unwrap()
    }

    #[test]
    fn lines_are_clipped_to_the_frame_and_absurd_points_cost_nothing() {
        assert_eq!(clip((10.0, 10.0), (20.0, 30.0), 100, 100), Some(((10, 10), (20, 30))));
        assert_eq!(clip((-50.0, 50.0), (150.0, 50.0), 100, 100), Some(((0, 50), (99, 50))));
        assert_eq!(clip((-50.0, -50.0), (-10.0, -10.0), 100, 100), None, "outside");
        assert_eq!(clip((f32::NAN, 1.0), (2.0, 2.0), 100, 100), None);
        let far = clip((10.0, 10.0), (1e15, 10.0), 100, 100);
        assert_eq!(far, Some(((10, 10), (99, 10))));
        // A whole poisoned pose draws at once.
        let mut rgb = vec![0u8; 64 * 48 * 3];
        let mut kps = vec![pump_proto::Keypoint { x: 10.0, y: 10.0, confidence: 0.9 }; 17];
        kps[5] = pump_proto::Keypoint { x: 1e15, y: -1e15, confidence: 0.9 };
        kps[6] = pump_proto::Keypoint { x: f32::INFINITY, y: f32::NAN, confidence: 0.9 };
        let poses = PoseFrame {
            people: vec![pump_proto::Person { keypoints: kps, ..Default::default() }],
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        draw(&mut rgb, 64, 48, &poses, None);
        assert!(t0.elapsed() < std::time::Duration::from_secs(1), "{:?}", t0.elapsed());
        assert!(rgb.iter().any(|&v| v > 0), "the sane keypoints are drawn");
    }

    #[test]
    fn during_a_set_only_its_athlete_is_drawn_bright() {
        // Two people side by side, the athlete on the left.
        let person = |x: f32| pump_proto::Person {
            r#box: Some(pump_proto::Box { x1: x, y1: 2.0, x2: x + 25.0, y2: 46.0 }),
            keypoints: (0..17)
                .map(|i| pump_proto::Keypoint { x: x + 12.0, y: 4.0 + 2.5 * i as f32, confidence: 0.9 })
                .collect(),
            ..Default::default()
        };
        let poses = PoseFrame { people: vec![person(2.0), person(36.0)], ..Default::default() };
        let colours = |athlete: Option<pump_proto::Box>| {
            let mut rgb = vec![0u8; 64 * 48 * 3];
            draw(&mut rgb, 64, 48, &poses, athlete.as_ref());
            let half = |x0: usize, x1: usize, c: [u8; 3]| {
                (0..48).flat_map(|y| (x0..x1).map(move |x| (y * 64 + x) * 3)).filter(|&i| rgb[i..i + 3] == c).count()
            };
            // The keypoints' colours (their dots cover these close-set bones).
            let (bright, grey) = ([255, 64, 0], [110, 110, 110]);
            (half(0, 32, bright), half(0, 32, grey), half(32, 64, bright), half(32, 64, grey))
        };
        let (lg, lx, rg, rx) = colours(Some(pump_proto::Box { x1: 3.0, y1: 3.0, x2: 27.0, y2: 45.0 }));
        assert!(lg > 0 && lx == 0 && rg == 0 && rx > 0, "athlete bright, bystander grey: {lg} {lx} {rg} {rx}");
        // Between sets, or an athlete nobody overlaps: everyone alike.
        for athlete in [None, Some(pump_proto::Box { x1: 60.0, y1: 0.0, x2: 64.0, y2: 4.0 })] {
            let (lg, lx, rg, rx) = colours(athlete);
            assert!(lg > 0 && rg > 0 && lx == 0 && rx == 0, "{athlete:?}: {lg} {lx} {rg} {rx}");
        }
    }

    #[test]
    fn caption_draws_white_text_on_a_dark_band() {
        let cache = SnapshotCache::default();
        let plain = decode(&cache.jpeg(&gray_frame(1), None).unwrap());
        let text = decode(
            &cache.jpeg(&gray_frame(1), Some(Overlay { poses: None, caption: Some("REPS 5"), athlete: None })).unwrap(),
        );
        let bright = |px: &[u8]| px.chunks_exact(3).filter(|p| p.iter().all(|v| *v > 200)).count();
        let dark = |px: &[u8]| px.chunks_exact(3).filter(|p| p.iter().all(|v| *v < 60)).count();
        assert_eq!((bright(&plain), dark(&plain)), (0, 0));
        assert!(bright(&text) > 50 && dark(&text) > 200, "{} {}", bright(&text), dark(&text));
    }

    #[test]
    fn a_second_caption_line_goes_below_the_first_half_as_large() {
        let (w, h) = (400u32, 320u32);
        let mut one = vec![90u8; (w * h * 3) as usize];
        let mut two = one.clone();
        caption(&mut one, w, h, "REPS 5", 2);
        caption(&mut two, w, h, "REPS 5\nPOSE 99 MS BEHIND", 2);
        let rows = |rgb: &[u8]| -> Vec<usize> {
            (0..h as usize).filter(|y| (0..w as usize).any(|x| rgb[(y * w as usize + x) * 3] == 255)).collect()
        };
        let (first, both) = (rows(&one), rows(&two));
        assert!(both.starts_with(&first), "the first line is where it was");
        let below: Vec<usize> = both.iter().copied().filter(|y| y > first.last().unwrap()).collect();
        // 8 glyph rows at half the scale, 1 px each, fewer where a row of the glyphs is blank.
        assert!((4..=8).contains(&below.len()), "second line rows: {below:?}");
    }

    #[test]
    fn an_encode_in_progress_holds_up_its_own_camera_only() {
        let cache = Arc::new(SnapshotCache::default());
        // Camera "busy" is mid-encode: its slot is held.
        let busy = cache.entries.lock().unwrap().entry(("busy".into(), false, false)).or_default().clone();
        let _encoding = busy.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = cache.clone();
        std::thread::spawn(move || tx.send(other.jpeg(&gray_frame(1), None).is_ok()));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)), Ok(true), "camera \"cam\" was held up");
    }

    #[test]
    fn encodes_once_per_frame_and_overlay_content() {
        let cache = SnapshotCache::default();
        let count = || cache.encodes.load(std::sync::atomic::Ordering::Relaxed);
        let o = |c| Some(Overlay { poses: None, caption: Some(c), athlete: None });
        for _ in 0..3 {
            cache.jpeg(&gray_frame(1), o("REPS 1")).unwrap();
        }
        assert_eq!(count(), 1);
        cache.jpeg(&gray_frame(1), o("REPS 2")).unwrap();
        assert_eq!(count(), 2);
        cache.jpeg(&gray_frame(2), o("REPS 2")).unwrap();
        cache.jpeg(&gray_frame(2), o("REPS 2")).unwrap();
        assert_eq!(count(), 3);
    }
}
