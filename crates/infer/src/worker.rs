//! The workers: each takes work from the slots, decodes the frame's pixels, runs its predictor,
//! and hands the result back to the slots, which say which poses are due (in frame order).

use std::time::{Duration, Instant};

use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;
use pump_bus::clock::now_ns;
use pump_bus::frame::{self, CheckedFrame};
use pump_bus::ratelog::RateLimitedLog;
use pump_pose::{ImageView, Pose};
use pump_proto::{Frame, PoseFrame};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::metrics::{DropReason, InferStats};
use crate::predictor::Predictor;
use crate::slot::{FrameSlots, Ticket, Work};

/// A frame's pixels, decoded.
enum Pixels {
    Decoded(Mat),
    Raw,
}

fn decode_pixels(f: &CheckedFrame) -> std::result::Result<Pixels, String> {
    match f.pixels() {
        frame::Pixels::Bgr8(_) => Ok(Pixels::Raw),
        frame::Pixels::Jpeg(jpeg) => {
            let buf = Vector::<u8>::from_slice(jpeg);
            let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR).map_err(|e| e.to_string())?;
            if mat.empty() {
                return Err("corrupt JPEG".into());
            }
            Ok(Pixels::Decoded(mat))
        }
        frame::Pixels::EndOfStream => Err("an end-of-stream marker has no pixels".into()),
    }
}

fn view<'a>(f: &'a CheckedFrame, px: &'a Pixels) -> pump_pose::Result<ImageView<'a>> {
    match px {
        Pixels::Raw => ImageView::new(&f.data, f.width as usize, f.height as usize, f.width as usize * 3),
        Pixels::Decoded(m) => {
            let data = m.data_bytes().map_err(|e| pump_pose::Error::Image(e.to_string()))?;
            let step = m.step1(0).map_err(|e| pump_pose::Error::Image(e.to_string()))?;
            ImageView::new(data, m.cols() as usize, m.rows() as usize, step)
        }
    }
}

/// A worker thread: takes work from the slots until they close, runs the predictor, and hands
/// the slots each frame's result, sending the poses they say are due (in frame order) to the
/// publisher.
pub(crate) fn worker_loop(
    id: usize,
    mut predictor: Box<dyn Predictor>,
    slots: &FrameSlots,
    stats: &InferStats,
    tx: &mpsc::Sender<PoseFrame>,
    cfg: &Config,
) {
    let _span = tracing::info_span!("infer_worker", worker = id).entered();
    let model = predictor.model();
    let provider = predictor.provider();
    let max_age_ns = cfg.max_frame_age.as_nanos() as i64;
    let mut limiter = RateLimitedLog::new(Duration::from_secs(5));
    while let Some(batch) = slots.take(cfg.batch, Duration::from_millis(250)) {
        let mut ready: Vec<(CheckedFrame, Ticket, Pixels)> = Vec::with_capacity(batch.len());
        for work in batch {
            match work {
                Work::EndOfStream(f) => {
                    let eos = PoseFrame {
                        camera: f.camera.clone(),
                        frame_id: f.frame_id,
                        capture_ts_ns: f.capture_ts_ns,
                        source_ts_ns: f.source_ts_ns,
                        segment: f.segment,
                        model: model.clone(),
                        provider: provider.into(),
                        end_of_stream: true,
                        ..Default::default()
                    };
                    let _ = tx.blocking_send(eos);
                }
                Work::Frame(f, ticket) => {
                    let cam = f.camera.clone();
                    if !f.paced && stats.age_ns(&cam, f.capture_ts_ns) > max_age_ns {
                        stats.dropped(&cam, DropReason::TooOld);
                        send_due(slots, tx, &cam, slots.finish(&cam, ticket, None));
                        continue;
                    }
                    match decode_pixels(&f) {
                        Ok(px) => ready.push((f, ticket, px)),
                        Err(e) => {
                            stats.dropped(&cam, DropReason::Undecodable);
                            limiter.warn(&cam, "frame undecodable", || format!("frame {}: {e}", f.frame_id));
                            send_due(slots, tx, &cam, slots.finish(&cam, ticket, None));
                        }
                    }
                }
            }
        }
        if ready.is_empty() {
            continue;
        }
        let views: pump_pose::Result<Vec<ImageView<'_>>> = ready.iter().map(|(f, _, px)| view(f, px)).collect();
        let start = now_ns();
        let t0 = Instant::now();
        let result = views.and_then(|v| predictor.predict(&v));
        // A slower machine, on purpose: the pose rates a busy host delivers, reproducibly.
        if let Some(rest) = cfg.min_inference.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let end = now_ns();
        match result {
            Ok((people, timings)) => {
                stats.stages(&timings);
                for ((f, ticket, _), poses) in ready.iter().zip(people) {
                    stats.inferred(&f.camera, ms);
                    let pf = pose_frame(f, &poses, start, end, &model, provider);
                    send_due(slots, tx, &f.camera, slots.finish(&f.camera, *ticket, Some(pf)));
                }
            }
            Err(e) => {
                for (f, ticket, _) in &ready {
                    stats.failed(&f.camera);
                    limiter.warn(&f.camera, "inference failed", || e.to_string());
                    send_due(slots, tx, &f.camera, slots.finish(&f.camera, *ticket, None));
                }
            }
        }
    }
}

/// Sends a camera's poses that are due, in order, then those that fell due meanwhile (other
/// workers' results, which waited for these).
fn send_due(slots: &FrameSlots, tx: &mpsc::Sender<PoseFrame>, camera: &str, mut due: Vec<PoseFrame>) {
    while !due.is_empty() {
        for pf in due {
            // The publisher is gone only at shutdown: nothing left to deliver to.
            let _ = tx.blocking_send(pf);
        }
        due = slots.sent(camera);
    }
}

fn pose_frame(f: &Frame, poses: &[Pose], start: i64, end: i64, model: &str, provider: &str) -> PoseFrame {
    PoseFrame {
        camera: f.camera.clone(),
        frame_id: f.frame_id,
        capture_ts_ns: f.capture_ts_ns,
        source_ts_ns: f.source_ts_ns,
        segment: f.segment,
        inference_start_ns: start,
        inference_end_ns: end,
        width: f.width,
        height: f.height,
        model: model.into(),
        provider: provider.into(),
        people: poses.iter().map(pump_pose::proto::to_person).collect(),
        // Stamped by the publisher.
        ..Default::default()
    }
}
