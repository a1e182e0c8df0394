//! What a frame must be before any stage spends memory or a model run on it. Frames come from
//! the bus, so from anyone who can publish there: a frame's claimed size is checked against its
//! pixels (for a JPEG, against its header, read without decoding) before anything is allocated.

use pump_proto::{Encoding, Frame};

/// The widest or tallest frame accepted.
pub const MAX_DIMENSION: u32 = 8192;

/// The most pixels a frame may have: 8K UHD (7680×4320), 100 MB as BGR.
pub const MAX_PIXELS: u64 = 7680 * 4320;

/// Refuses frames no decoder should see: zero or absurd sizes, unknown encodings, short pixels,
/// and JPEGs whose header says another size than the frame claims (a 1.5 MB JPEG can hold
/// 16000×16000 pixels: 768 MB decoded).
pub fn check(f: &Frame, max_dimension: u32) -> Result<(), String> {
    if f.end_of_stream {
        return Ok(());
    }
    let (w, h) = (f.width, f.height);
    if w == 0 || h == 0 || w > max_dimension || h > max_dimension {
        return Err(format!("dimensions {w}x{h} outside 1..={max_dimension}"));
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("{w}x{h} is over the {MAX_PIXELS}-pixel cap"));
    }
    match Encoding::try_from(f.encoding) {
        Ok(Encoding::Jpeg) if f.data.is_empty() => Err("empty JPEG".into()),
        Ok(Encoding::Jpeg) => match jpeg_size(&f.data)? {
            (jw, jh) if (jw, jh) == (w, h) => Ok(()),
            (jw, jh) => Err(format!("a {jw}x{jh} JPEG in a frame that claims {w}x{h}")),
        },
        Ok(Encoding::Bgr8) if f.data.len() as u64 == u64::from(w) * u64::from(h) * 3 => Ok(()),
        Ok(Encoding::Bgr8) => Err(format!("{} bytes for {w}x{h} BGR8", f.data.len())),
        _ => Err(format!("encoding {} with {} bytes", f.encoding, f.data.len())),
    }
}

/// A frame that passed [`check`]: its pixels are what it says, so whoever holds one may decode
/// it. Made by `TryFrom<Frame>` (with [`MAX_DIMENSION`]) or [`CheckedFrame::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedFrame(Frame);

/// A checked frame's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pixels<'a> {
    /// Raw BGR rows, `width × 3` bytes each.
    Bgr8(&'a [u8]),
    /// A JPEG whose header states the frame's size.
    Jpeg(&'a [u8]),
    /// The marker after a file's last frame: no pixels.
    EndOfStream,
}

impl CheckedFrame {
    /// Checks `frame` with `max_dimension` as the largest side.
    pub fn new(frame: Frame, max_dimension: u32) -> Result<Self, String> {
        check(&frame, max_dimension)?;
        Ok(Self(frame))
    }

    pub fn frame(&self) -> &Frame {
        &self.0
    }

    pub fn into_frame(self) -> Frame {
        self.0
    }

    pub fn pixels(&self) -> Pixels<'_> {
        match Encoding::try_from(self.0.encoding) {
            _ if self.0.end_of_stream => Pixels::EndOfStream,
            Ok(Encoding::Jpeg) => Pixels::Jpeg(&self.0.data),
            // `check` let no other encoding through.
            _ => Pixels::Bgr8(&self.0.data),
        }
    }
}

impl TryFrom<Frame> for CheckedFrame {
    type Error = String;

    fn try_from(frame: Frame) -> Result<Self, String> {
        Self::new(frame, MAX_DIMENSION)
    }
}

impl std::ops::Deref for CheckedFrame {
    type Target = Frame;

    fn deref(&self) -> &Frame {
        &self.0
    }
}

/// A JPEG's width and height from its header, decoding no pixel.
pub fn jpeg_size(data: &[u8]) -> Result<(u32, u32), String> {
    let mut d = jpeg_decoder::Decoder::new(data);
    d.read_info().map_err(|e| format!("corrupt JPEG header: {e}"))?;
    let info = d.info().ok_or("JPEG header without a size")?;
    Ok((u32::from(info.width), u32::from(info.height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline JPEG's header (SOI, a SOF0 of `w`×`h`, one component), as much as the size needs.
    fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        // A quantisation table, so the header is one a decoder reads up to the frame.
        v.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
        v.extend([1u8; 64]);
        v.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        v.extend(h.to_be_bytes());
        v.extend(w.to_be_bytes());
        v.extend([0x01, 0x01, 0x11, 0x00]);
        v
    }

    #[test]
    fn a_checked_frame_says_what_its_pixels_are() {
        let raw = CheckedFrame::try_from(frame(4, 2, Encoding::Bgr8, vec![7; 24])).unwrap();
        assert_eq!(raw.pixels(), Pixels::Bgr8(&[7; 24]));
        let header = jpeg_header(64, 48);
        let jpeg = CheckedFrame::try_from(frame(64, 48, Encoding::Jpeg, header.clone())).unwrap();
        assert_eq!(jpeg.pixels(), Pixels::Jpeg(&header));
        let eos = CheckedFrame::try_from(Frame { end_of_stream: true, ..Default::default() }).unwrap();
        assert_eq!(eos.pixels(), Pixels::EndOfStream);
        assert!(CheckedFrame::try_from(frame(4, 2, Encoding::Bgr8, vec![0; 23])).is_err());
        assert!(CheckedFrame::new(frame(64, 48, Encoding::Jpeg, header), 32).is_err());
    }

    fn frame(w: u32, h: u32, encoding: Encoding, data: Vec<u8>) -> Frame {
        Frame { width: w, height: h, encoding: encoding as i32, data: data.into(), ..Default::default() }
    }

    #[test]
    fn a_jpeg_bigger_than_its_claim_is_refused_unread() {
        assert_eq!(jpeg_size(&jpeg_header(16000, 16000)), Ok((16000, 16000)));
        let bomb = frame(64, 48, Encoding::Jpeg, jpeg_header(16000, 16000));
        assert_eq!(check(&bomb, MAX_DIMENSION), Err("a 16000x16000 JPEG in a frame that claims 64x48".into()));
        assert!(check(&frame(64, 48, Encoding::Jpeg, jpeg_header(64, 48)), MAX_DIMENSION).is_ok());
        assert!(check(&frame(64, 48, Encoding::Jpeg, b"not a jpeg".to_vec()), MAX_DIMENSION).is_err());
    }

    #[test]
    fn sizes_and_raw_lengths_are_checked() {
        assert!(check(&frame(0, 48, Encoding::Bgr8, vec![]), MAX_DIMENSION).is_err());
        assert!(check(&frame(8192, 8192, Encoding::Bgr8, vec![]), MAX_DIMENSION).unwrap_err().contains("cap"));
        assert!(check(&frame(4, 2, Encoding::Bgr8, vec![0; 24]), MAX_DIMENSION).is_ok());
        assert!(check(&frame(4, 2, Encoding::Bgr8, vec![0; 23]), MAX_DIMENSION).is_err());
        assert!(check(&Frame { end_of_stream: true, ..Default::default() }, MAX_DIMENSION).is_ok());
    }
}
