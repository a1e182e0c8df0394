//! Motion-JPEG in AVI: the one video container the gateway can write without an encoder or
//! OpenCV — its frames are JPEGs already (the preview's). FFmpeg, VLC, OpenCV and most players
//! read it; browsers download it rather than play it inline.
//!
//! Layout (AVI 1.0, one video stream, every frame a key frame):
//! `RIFF AVI ( LIST hdrl ( avih, LIST strl ( strh, strf ) ), LIST movi ( 00dc… ), idx1 )`.

/// `AVIF_HASINDEX`: the file ends with an `idx1` index.
const AVIF_HASINDEX: u32 = 0x10;
/// `AVIIF_KEYFRAME`: each index entry is a key frame (every JPEG is one).
const AVIIF_KEYFRAME: u32 = 0x10;
/// AVI 1.0 sizes are 32-bit: a clip stays well under this.
pub const MAX_AVI_BYTES: usize = 1 << 30;

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Writes a chunk `id` around what `body` writes, its size filled in after, padded to even.
fn chunk(out: &mut Vec<u8>, id: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(id);
    let at = out.len();
    u32le(out, 0);
    body(out);
    let size = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&size.to_le_bytes());
    if size % 2 == 1 {
        out.push(0);
    }
}

/// A `LIST` of `kind`.
fn list(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    chunk(out, b"LIST", |out| {
        out.extend_from_slice(kind);
        body(out);
    });
}

/// Why a clip could not be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AviError {
    #[error("a clip needs at least one frame")]
    Empty,
    #[error("a frame rate of {0} is not one")]
    Rate(f64),
    #[error("a clip of {0} bytes is over AVI's limit")]
    TooLarge(usize),
}

/// The AVI of `jpegs` (each a whole JPEG of `width`×`height`), played at `fps`.
pub fn mjpeg_avi(jpegs: &[impl AsRef<[u8]>], width: u32, height: u32, fps: f64) -> Result<Vec<u8>, AviError> {
    if jpegs.is_empty() {
        return Err(AviError::Empty);
    }
    if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
        return Err(AviError::Rate(fps));
    }
    let total: usize = jpegs.iter().map(|j| j.as_ref().len() + 9).sum();
    if total > MAX_AVI_BYTES {
        return Err(AviError::TooLarge(total));
    }
    let n = jpegs.len() as u32;
    let largest = jpegs.iter().map(|j| j.as_ref().len()).max().unwrap_or(0) as u32;
    // The rate as a fraction with a thousandth of a frame a second's precision.
    let (rate, scale) = ((fps * 1000.0).round() as u32, 1000u32);
    let micros_per_frame = (1e6 / fps).round() as u32;
    let mut out = Vec::with_capacity(total + 1024);
    let mut index = Vec::with_capacity(jpegs.len() * 16);
    chunk(&mut out, b"RIFF", |out| {
        out.extend_from_slice(b"AVI ");
        list(out, b"hdrl", |out| {
            chunk(out, b"avih", |out| {
                for v in [micros_per_frame, largest.saturating_mul(fps.ceil() as u32), 0, AVIF_HASINDEX, n, 0, 1] {
                    u32le(out, v);
                }
                for v in [largest, width, height, 0, 0, 0, 0] {
                    u32le(out, v);
                }
            });
            list(out, b"strl", |out| {
                chunk(out, b"strh", |out| {
                    out.extend_from_slice(b"vids");
                    out.extend_from_slice(b"MJPG");
                    u32le(out, 0); // flags
                    u16le(out, 0); // priority
                    u16le(out, 0); // language
                    for v in [0, scale, rate, 0, n, largest, u32::MAX, 0] {
                        u32le(out, v);
                    }
                    for v in [0, 0, width as u16, height as u16] {
                        u16le(out, v);
                    }
                });
                // BITMAPINFOHEADER.
                chunk(out, b"strf", |out| {
                    for v in [40, width, height] {
                        u32le(out, v);
                    }
                    u16le(out, 1); // planes
                    u16le(out, 24); // bits per pixel
                    out.extend_from_slice(b"MJPG");
                    for v in [width * height * 3, 0, 0, 0, 0] {
                        u32le(out, v);
                    }
                });
            });
        });
        list(out, b"movi", |out| {
            // Index offsets count from the `movi` type field.
            let movi = out.len() - 4;
            for jpeg in jpegs {
                let jpeg = jpeg.as_ref();
                u32le(&mut index, u32::from_le_bytes(*b"00dc"));
                u32le(&mut index, AVIIF_KEYFRAME);
                u32le(&mut index, (out.len() - movi) as u32);
                u32le(&mut index, jpeg.len() as u32);
                chunk(out, b"00dc", |out| out.extend_from_slice(jpeg));
            }
        });
        chunk(out, b"idx1", |out| out.extend_from_slice(&index));
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    #[test]
    fn chunks_nest_with_their_sizes_and_the_index_points_at_each_frame() {
        // Odd sizes: each frame chunk is padded to even.
        let frames =
            [vec![0xFFu8, 0xD8, 1, 0xFF, 0xD9], vec![0xFF, 0xD8, 2, 2, 0xFF, 0xD9], vec![0xFF, 0xD8, 0xFF, 0xD9]];
        let avi = mjpeg_avi(&frames, 64, 48, 7.5).unwrap();
        assert_eq!(&avi[0..4], b"RIFF");
        assert_eq!(at(&avi, 4) as usize, avi.len() - 8);
        assert_eq!(&avi[8..12], b"AVI ");
        // avih: 1e6 / 7.5 µs a frame, the index flag, 3 frames, 1 stream, 64×48.
        let avih = avi.windows(4).position(|w| w == b"avih").unwrap() + 8;
        assert_eq!((at(&avi, avih), at(&avi, avih + 12), at(&avi, avih + 16)), (133_333, AVIF_HASINDEX, 3));
        assert_eq!((at(&avi, avih + 24), at(&avi, avih + 32), at(&avi, avih + 36)), (1, 64, 48));
        let strh = avi.windows(4).position(|w| w == b"strh").unwrap() + 8;
        assert_eq!((&avi[strh..strh + 4], &avi[strh + 4..strh + 8]), (&b"vids"[..], &b"MJPG"[..]));
        assert_eq!((at(&avi, strh + 20), at(&avi, strh + 24), at(&avi, strh + 32)), (1000, 7500, 3));
        let movi = avi.windows(4).position(|w| w == b"movi").unwrap();
        let idx = avi.windows(4).position(|w| w == b"idx1").unwrap();
        assert_eq!(at(&avi, idx + 4), 48);
        for (i, f) in frames.iter().enumerate() {
            let e = idx + 8 + i * 16;
            assert_eq!((&avi[e..e + 4], at(&avi, e + 4)), (&b"00dc"[..], AVIIF_KEYFRAME));
            let (offset, size) = (at(&avi, e + 8) as usize, at(&avi, e + 12) as usize);
            assert_eq!(&avi[movi + offset..movi + offset + 4], b"00dc");
            assert_eq!(size, f.len());
            assert_eq!(&avi[movi + offset + 8..movi + offset + 8 + size], &f[..]);
        }
        // The movi list's size covers its type and every padded chunk.
        assert_eq!(at(&avi, movi - 4) as usize, 4 + (8 + 6) + (8 + 6) + (8 + 4));
    }

    #[test]
    fn nothing_to_write_and_no_rate_are_errors() {
        assert_eq!(mjpeg_avi(&[] as &[Vec<u8>], 64, 48, 15.0), Err(AviError::Empty));
        for fps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(mjpeg_avi(&[vec![0u8; 4]], 64, 48, fps), Err(AviError::Rate(_))));
        }
    }
}
