//! Pre-processing exactly as Ultralytics' `LetterBox` + predictor `preprocess` do it for a
//! dynamic-shape model: scale the long side to `imgsz` keeping aspect, pad to the minimum rectangle
//! on the model stride with grey 114, centred, then BGR→RGB, /255, NCHW f32.
//!
//! The resize reproduces OpenCV's `INTER_LINEAR` for 8-bit images bit for bit (11-bit fixed-point
//! weights, the same border clamping and the 2× area shortcut), because parity with Ultralytics is
//! judged on what the model sees. It is fused with padding, channel swap and normalisation so each
//! output value is written once.
//!
//! Over 400 lines with its tests: the code is 341, the rest checks it against Ultralytics' numbers.

use crate::error::{Error, Result};

/// Grey used for padding, as Ultralytics.
pub const PAD_VALUE: u8 = 114;

/// A borrowed BGR8 image, rows `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl<'a> ImageView<'a> {
    /// Wraps packed or strided BGR8 pixels, checking that the buffer holds them.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::Image(format!("empty image {width}x{height}")));
        }
        if stride < width * 3 {
            return Err(Error::Image(format!("row stride {stride} is shorter than {width} BGR pixels")));
        }
        let needed = stride * (height - 1) + width * 3;
        if data.len() < needed {
            return Err(Error::Image(format!(
                "buffer of {} bytes is too small for {width}x{height} BGR8 (needs {needed})",
                data.len()
            )));
        }
        Ok(Self { data, width, height, stride })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * 3]
    }
}

/// Python 3's `round()`: halves go to the even neighbour. Ultralytics' geometry depends on it.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// Where a source image sits inside the model input, and how to map model coordinates back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Source image size in pixels.
    pub src_w: usize,
    pub src_h: usize,
    /// Size of the resized image inside the input.
    pub new_w: usize,
    pub new_h: usize,
    /// Padding before the image (left, top), in input pixels.
    pub pad_x: usize,
    pub pad_y: usize,
    /// Model input size this letterbox was planned for.
    pub input_w: usize,
    pub input_h: usize,
}

impl Letterbox {
    /// Plans the letterbox of a `src_w`×`src_h` image into a `target_h`×`target_w` canvas; with
    /// `auto` the canvas shrinks to the minimum rectangle on `stride` (Ultralytics' `auto=True`).
    pub fn plan(src_w: usize, src_h: usize, target_w: usize, target_h: usize, auto: bool, stride: usize) -> Self {
        let (sw, sh) = (src_w as f64, src_h as f64);
        let r = (target_h as f64 / sh).min(target_w as f64 / sw);
        let new_w = py_round(sw * r).max(1) as usize;
        let new_h = py_round(sh * r).max(1) as usize;
        let (mut dw, mut dh) = (target_w.saturating_sub(new_w), target_h.saturating_sub(new_h));
        if auto {
            dw %= stride;
            dh %= stride;
        }
        let (half_w, half_h) = (dw as f64 / 2.0, dh as f64 / 2.0);
        let left = py_round(half_w - 0.1) as usize;
        let right = py_round(half_w + 0.1) as usize;
        let top = py_round(half_h - 0.1) as usize;
        let bottom = py_round(half_h + 0.1) as usize;
        Self {
            src_w,
            src_h,
            new_w,
            new_h,
            pad_x: left,
            pad_y: top,
            input_w: new_w + left + right,
            input_h: new_h + top + bottom,
        }
    }

    /// Returns the per-axis gains and pads that Ultralytics' `scale_boxes`/`scale_coords` derive
    /// from the input and source shapes alone; using them (not the plan) keeps parity exact.
    fn inverse(&self) -> (f32, f32, f32, f32) {
        let (iw, ih) = (self.input_w as f64, self.input_h as f64);
        let (sw, sh) = (self.src_w as f64, self.src_h as f64);
        let gain = (ih / sh).min(iw / sw);
        let new_h = py_round(sh * gain).max(1) as f64;
        let new_w = py_round(sw * gain).max(1) as f64;
        let pad_x = py_round((iw - new_w) / 2.0 - 0.1) as f32;
        let pad_y = py_round((ih - new_h) / 2.0 - 0.1) as f32;
        ((new_w / sw) as f32, (new_h / sh) as f32, pad_x, pad_y)
    }

    /// Maps points from model-input pixels to source pixels, clipped to the source image (the
    /// inverse is computed once for all of them).
    pub fn mapper(&self) -> impl Fn(f32, f32) -> (f32, f32) + '_ {
        let (gx, gy, px, py) = self.inverse();
        let (w, h) = (self.src_w as f32, self.src_h as f32);
        move |x, y| (((x - px) / gx).clamp(0.0, w), ((y - py) / gy).clamp(0.0, h))
    }
}

/// A batch of model inputs, NCHW f32, with the letterbox of each image. Reused across calls.
#[derive(Debug, Default)]
pub struct InputTensor {
    pub data: Vec<f32>,
    /// `[N, 3, H, W]`.
    pub shape: [usize; 4],
    pub letterboxes: Vec<Letterbox>,
}

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Reusable resize state: interpolation tables and two horizontally filtered rows.
#[derive(Debug, Default)]
struct ResizeScratch {
    xofs: Vec<usize>,
    alpha: Vec<[i32; 2]>,
    rows: [Vec<i32>; 2],
    row_src: [Option<usize>; 2],
    out_row: Vec<u8>,
}

/// Turns images into model input. Holds the scratch buffers so the hot path does not allocate.
#[derive(Debug)]
pub struct Preprocessor {
    imgsz: usize,
    stride: usize,
    scratch: ResizeScratch,
    lut: [f32; 256],
}

impl Preprocessor {
    /// `imgsz` is the long side of the input (640 for the shipped model), `stride` the model's.
    pub fn new(imgsz: usize, stride: usize) -> Self {
        let mut lut = [0.0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 255.0;
        }
        Self { imgsz, stride, scratch: ResizeScratch::default(), lut }
    }

    /// Returns the long side of the model input.
    pub fn imgsz(&self) -> usize {
        self.imgsz
    }

    /// Plans letterboxes as Ultralytics' predictor does: a batch whose images all have one shape
    /// gets the minimum rectangle; mixed shapes all get the full `imgsz` square.
    pub fn plan(&self, sizes: &[(usize, usize)]) -> Vec<Letterbox> {
        let same = sizes.windows(2).all(|w| w[0] == w[1]);
        sizes.iter().map(|&(w, h)| Letterbox::plan(w, h, self.imgsz, self.imgsz, same, self.stride)).collect()
    }

    /// Fills `tensor` with the letterboxed images, reusing its allocation.
    pub fn run(&mut self, images: &[ImageView<'_>], tensor: &mut InputTensor) -> Result<()> {
        if images.is_empty() {
            return Err(Error::Image("empty batch".into()));
        }
        let sizes: Vec<_> = images.iter().map(|i| (i.width, i.height)).collect();
        tensor.letterboxes = self.plan(&sizes);
        let (iw, ih) = (tensor.letterboxes[0].input_w, tensor.letterboxes[0].input_h);
        debug_assert!(tensor.letterboxes.iter().all(|l| l.input_w == iw && l.input_h == ih));
        tensor.shape = [images.len(), 3, ih, iw];
        let plane = iw * ih;
        tensor.data.resize(images.len() * 3 * plane, 0.0);
        for (n, (img, lb)) in images.iter().zip(tensor.letterboxes.iter()).enumerate() {
            let chw = &mut tensor.data[n * 3 * plane..(n + 1) * 3 * plane];
            self.letterbox_into(img, lb, chw);
        }
        Ok(())
    }

    fn letterbox_into(&mut self, img: &ImageView<'_>, lb: &Letterbox, chw: &mut [f32]) {
        let (iw, ih) = (lb.input_w, lb.input_h);
        let plane = iw * ih;
        let pad = self.lut[PAD_VALUE as usize];
        // Padding: only the border is filled, the image area is overwritten below.
        for c in 0..3 {
            let p = &mut chw[c * plane..(c + 1) * plane];
            for y in 0..ih {
                let row = &mut p[y * iw..(y + 1) * iw];
                if y < lb.pad_y || y >= lb.pad_y + lb.new_h {
                    row.fill(pad);
                } else {
                    row[..lb.pad_x].fill(pad);
                    row[lb.pad_x + lb.new_w..].fill(pad);
                }
            }
        }
        let (dw, dh) = (lb.new_w, lb.new_h);
        let lut = self.lut;
        // Tensor planes are R, G, B: OpenCV's BGR order is swapped while normalising.
        let emit_rgb = |dy: usize, bgr: &[u8], chw: &mut [f32]| {
            let (r_plane, rest) = chw.split_at_mut(plane);
            let (g_plane, b_plane) = rest.split_at_mut(plane);
            let base = (lb.pad_y + dy) * iw + lb.pad_x;
            let (r, g, b) =
                (&mut r_plane[base..base + dw], &mut g_plane[base..base + dw], &mut b_plane[base..base + dw]);
            for (i, px) in bgr.chunks_exact(3).enumerate() {
                b[i] = lut[px[0] as usize];
                g[i] = lut[px[1] as usize];
                r[i] = lut[px[2] as usize];
            }
        };
        if dw == img.width && dh == img.height {
            for dy in 0..dh {
                emit_rgb(dy, img.row(dy), chw);
            }
        } else if img.width == 2 * dw && img.height == 2 * dh {
            // OpenCV turns an exact 2× linear downscale into INTER_AREA.
            let out = &mut self.scratch.out_row;
            out.resize(dw * 3, 0);
            for dy in 0..dh {
                let (r0, r1) = (img.row(2 * dy), img.row(2 * dy + 1));
                for dx in 0..dw {
                    for c in 0..3 {
                        let s = r0[6 * dx + c] as u32
                            + r0[6 * dx + 3 + c] as u32
                            + r1[6 * dx + c] as u32
                            + r1[6 * dx + 3 + c] as u32;
                        out[3 * dx + c] = ((s + 2) >> 2) as u8;
                    }
                }
                emit_rgb(dy, out, chw);
            }
        } else {
            self.resize_linear(img, dw, dh, |dy, row| emit_rgb(dy, row, chw));
        }
    }

    /// OpenCV `resize(INTER_LINEAR)` for CV_8UC3, one output row at a time.
    fn resize_linear(&mut self, img: &ImageView<'_>, dw: usize, dh: usize, mut sink: impl FnMut(usize, &[u8])) {
        let s = &mut self.scratch;
        let (sw, sh) = (img.width, img.height);
        let scale_x = 1.0 / (dw as f64 / sw as f64);
        let scale_y = 1.0 / (dh as f64 / sh as f64);
        s.xofs.clear();
        s.alpha.clear();
        for dx in 0..dw {
            let (sx, fx) = source_coord(dx, scale_x, sw);
            s.xofs.push(sx);
            s.alpha.push(fixed_weights(fx));
        }
        for r in &mut s.rows {
            r.resize(dw * 3, 0);
        }
        s.row_src = [None, None];
        s.out_row.resize(dw * 3, 0);
        for dy in 0..dh {
            let (sy, fy) = source_coord(dy, scale_y, sh);
            let sy1 = (sy + 1).min(sh - 1);
            for (k, want) in [sy, sy1].into_iter().enumerate() {
                if s.row_src[k] == Some(want) {
                    continue;
                }
                // The other slot may already hold the row we need (the window slid by one).
                let other = 1 - k;
                if s.row_src[other] == Some(want) && k == 0 {
                    s.rows.swap(0, 1);
                    s.row_src.swap(0, 1);
                    continue;
                }
                hresize(img.row(want), &s.xofs, &s.alpha, &mut s.rows[k]);
                s.row_src[k] = Some(want);
            }
            let [b0, b1] = fixed_weights(fy);
            for ((o, &a), &b) in s.out_row.iter_mut().zip(&s.rows[0]).zip(&s.rows[1]) {
                let v = ((b0 * (a >> 4)) >> 16) + ((b1 * (b >> 4)) >> 16) + 2;
                *o = (v >> 2).clamp(0, 255) as u8;
            }
            sink(dy, &s.out_row);
        }
    }
}

/// OpenCV's source coordinate and fraction for destination index `d`, with its border clamping.
fn source_coord(d: usize, scale: f64, src_len: usize) -> (usize, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let mut s = f.floor() as i64;
    let mut frac = f - s as f32;
    if s < 0 {
        s = 0;
        frac = 0.0;
    }
    if s >= src_len as i64 - 1 {
        s = src_len as i64 - 1;
        frac = 0.0;
    }
    (s as usize, frac)
}

fn fixed_weights(frac: f32) -> [i32; 2] {
    let w0 = ((1.0 - frac) * COEF_SCALE).round() as i32;
    [w0, (1 << COEF_BITS) - w0]
}

fn hresize(src: &[u8], xofs: &[usize], alpha: &[[i32; 2]], dst: &mut [i32]) {
    let last = src.len() / 3 - 1;
    for (dx, (&sx, &[a0, a1])) in xofs.iter().zip(alpha).enumerate() {
        let sx1 = (sx + 1).min(last);
        for c in 0..3 {
            dst[3 * dx + c] = src[3 * sx + c] as i32 * a0 + src[3 * sx1 + c] as i32 * a1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_plans_minimum_rectangle_without_padding() {
        let lb = Letterbox::plan(810, 1080, 640, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h, lb.input_w, lb.input_h), (480, 640, 480, 640));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 0));
    }

    #[test]
    fn zidane_pads_height_to_stride_centred() {
        let lb = Letterbox::plan(1280, 720, 640, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (640, 360));
        assert_eq!((lb.input_w, lb.input_h), (640, 384));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 12));
    }

    #[test]
    fn odd_padding_splits_like_python_round() {
        // 320×516 (squat fixture): new 397×640, dw = 243 % 32 = 19 → 9.5 → left 9, right 10.
        let lb = Letterbox::plan(320, 516, 640, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (397, 640));
        assert_eq!((lb.pad_x, lb.input_w), (9, 416));
    }

    #[test]
    fn tiny_and_very_wide_images_stay_valid() {
        let lb = Letterbox::plan(1, 1, 640, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h, lb.input_w, lb.input_h), (640, 640, 640, 640));
        let lb = Letterbox::plan(3000, 1, 640, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (640, 1));
        assert_eq!(lb.input_h % 32, 0);
        assert_eq!(lb.input_h, 32);
        let lb = Letterbox::plan(5, 3, 640, 640, false, 32);
        assert_eq!((lb.input_w, lb.input_h), (640, 640));
    }

    #[test]
    fn mixed_batches_use_the_square() {
        let p = Preprocessor::new(640, 32);
        let plan = p.plan(&[(1280, 720), (810, 1080)]);
        assert!(plan.iter().all(|l| l.input_w == 640 && l.input_h == 640));
        let plan = p.plan(&[(1280, 720), (1280, 720)]);
        assert!(plan.iter().all(|l| l.input_h == 384));
    }

    #[test]
    fn inverse_maps_corners_back_and_clips() {
        let lb = Letterbox::plan(1280, 720, 640, 640, true, 32);
        let to_source = lb.mapper();
        let (x, y) = to_source(0.0, 12.0);
        assert!((x - 0.0).abs() < 1e-4 && (y - 0.0).abs() < 1e-4);
        let (x, y) = to_source(640.0, 372.0);
        assert!((x - 1280.0).abs() < 1e-3 && (y - 720.0).abs() < 1e-3);
        // A keypoint predicted in the padding lands on the image edge, never outside.
        assert_eq!(to_source(-5.0, 2.0), (0.0, 0.0));
        assert_eq!(to_source(700.0, 383.0), (1280.0, 720.0));
    }

    fn solid(w: usize, h: usize, bgr: [u8; 3]) -> Vec<u8> {
        bgr.iter().copied().cycle().take(w * h * 3).collect()
    }

    #[test]
    fn tensor_is_rgb_normalised_with_grey_padding() {
        let data = solid(64, 32, [10, 20, 30]);
        let img = ImageView::new(&data, 64, 32, 64 * 3).unwrap();
        let mut pre = Preprocessor::new(64, 32);
        let mut t = InputTensor::default();
        pre.run(&[img], &mut t).unwrap();
        assert_eq!(t.shape, [1, 3, 32, 64]);
        let plane = 32 * 64;
        assert_eq!(t.data[0], 30.0 / 255.0);
        assert_eq!(t.data[plane], 20.0 / 255.0);
        assert_eq!(t.data[2 * plane], 10.0 / 255.0);

        // 64×20 → padded to 32 rows: 6 grey rows above.
        let data = solid(64, 20, [10, 20, 30]);
        let img = ImageView::new(&data, 64, 20, 64 * 3).unwrap();
        pre.run(&[img], &mut t).unwrap();
        assert_eq!(t.shape, [1, 3, 32, 64]);
        assert_eq!(t.data[0], 114.0 / 255.0);
        assert_eq!(t.data[6 * 64], 30.0 / 255.0);
        assert_eq!(t.data[26 * 64], 114.0 / 255.0);
    }

    #[test]
    fn linear_resize_keeps_constant_images_constant_and_interpolates_ramps() {
        // Upscale 3 → 6 px of a ramp; OpenCV gives 0 25 75 125 175 200 for 0 100 200.
        let data: Vec<u8> = [0u8, 100, 200].iter().flat_map(|&v| [v, v, v]).collect();
        let img = ImageView::new(&data, 3, 1, 9).unwrap();
        let mut pre = Preprocessor::new(6, 1);
        let mut out = Vec::new();
        pre.resize_linear(&img, 6, 2, |_, row| out = row.iter().step_by(3).copied().collect());
        assert_eq!(out, vec![0, 25, 75, 125, 175, 200]);
    }

    #[test]
    fn strided_views_are_checked() {
        let data = vec![0u8; 10];
        assert!(ImageView::new(&data, 2, 2, 6).is_err());
        assert!(ImageView::new(&data, 0, 2, 6).is_err());
        assert!(ImageView::new(&data, 1, 2, 2).is_err());
        assert!(ImageView::new(&data, 1, 2, 6).is_ok());
    }
}
