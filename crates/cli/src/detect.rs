//! `pump detect`: every frame of every source, in order, to one JSON line each.
//!
//! Decoding and pre-processing run on a reader thread while the model runs on this one, so the
//! model never waits for the decoder (the two overlap; only the slower sets the pace). Tensors
//! go round a small pool, so the steady state allocates nothing.

use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use opencv::core::Mat;
use opencv::prelude::*;
use pump_capture::{FrameInfo, MediaSource};
use pump_pose::{ImageView, InputTensor, PoseEngine, Preprocessor};

use crate::args::DetectArgs;
use crate::output::FrameLine;

/// Frames prepared ahead of the model: enough to hide decoder jitter, small enough to stay cheap.
const PREPARED_AHEAD: usize = 2;

/// A frame ready for the model.
struct Prepared {
    source: usize,
    info: FrameInfo,
    height: usize,
    width: usize,
    tensor: InputTensor,
}

pub fn run(args: DetectArgs) -> Result<()> {
    // Open every source first: a bad path fails before minutes of work on the ones before it.
    let sources = args.sources.iter().map(MediaSource::open).collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = args.sources.iter().map(|p| p.display().to_string()).collect();
    let cfg = args.model.engine_config();
    let mut engine = PoseEngine::load(&cfg).context("cannot start the pose engine")?;
    let progress = progress_bar(&sources, args.no_progress);
    let preprocessor = engine.preprocessor();
    let multi = sources.len() > 1;

    std::thread::scope(|scope| -> Result<()> {
        let (ready_tx, ready_rx) = sync_channel::<Result<Prepared>>(PREPARED_AHEAD);
        // The pool's sender is held here; dropping it (on error) stops the reader.
        let (pool_tx, pool_rx) = channel::<InputTensor>();
        for _ in 0..PREPARED_AHEAD + 2 {
            let _ = pool_tx.send(InputTensor::default());
        }
        let reader = scope.spawn(move || read_and_prepare(sources, preprocessor, ready_tx, pool_rx));

        let mut out = BufWriter::new(io::stdout().lock());
        let result = (|| -> Result<()> {
            for prepared in ready_rx.iter() {
                let p = prepared?;
                let (mut poses, _) = engine.run_tensor(&p.tensor).context("inference failed")?;
                let source = multi.then(|| names[p.source].as_str());
                let line = FrameLine::new(source, p.info.index, p.info.ts, p.height, p.width, &poses.remove(0));
                serde_json::to_writer(&mut out, &line)?;
                if let Err(e) = out.write_all(b"\n").and_then(|()| out.flush()) {
                    // A closed pipe (`pump detect … | head`) is the reader saying it has enough.
                    return if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e.into()) };
                }
                progress.inc(1);
                let _ = pool_tx.send(p.tensor);
            }
            Ok(())
        })();
        drop(pool_tx);
        drop(ready_rx);
        let _ = reader.join();
        progress.finish_and_clear();
        result
    })
}

/// Reader thread: decodes each source in turn and pre-processes every frame into a pooled tensor.
/// Stops at the first error (sent on) or when the consumer hangs up.
fn read_and_prepare(
    mut sources: Vec<MediaSource>,
    mut pre: Preprocessor,
    ready: SyncSender<Result<Prepared>>,
    pool: Receiver<InputTensor>,
) {
    let mut frame = Mat::default();
    for (source, media) in sources.iter_mut().enumerate() {
        loop {
            let info = match media.read(&mut frame) {
                Ok(Some(info)) => info,
                Ok(None) => break,
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            };
            let Ok(mut tensor) = pool.recv() else { return };
            let prepared = prepare(&frame, &mut pre, &mut tensor)
                .with_context(|| format!("{}: frame {}", media.path().display(), info.index))
                .map(|(height, width)| Prepared { source, info, height, width, tensor });
            let failed = prepared.is_err();
            if ready.send(prepared).is_err() || failed {
                return;
            }
        }
    }
}

fn prepare(frame: &Mat, pre: &mut Preprocessor, tensor: &mut InputTensor) -> Result<(usize, usize)> {
    let (w, h) = (frame.cols() as usize, frame.rows() as usize);
    let step = frame.step1(0)? * frame.elem_size1();
    let view = ImageView::new(frame.data_bytes()?, w, h, step)?;
    pre.run(&[view], tensor)?;
    Ok((h, w))
}

fn progress_bar(sources: &[MediaSource], disabled: bool) -> ProgressBar {
    if disabled {
        return ProgressBar::hidden();
    }
    let total: u64 = sources.iter().map(|s| s.frame_count().unwrap_or(0)).sum();
    // indicatif draws nothing when stderr is not a terminal, so pipes and logs stay clean.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} frames  {per_sec}  eta {eta}") {
        bar.set_style(style);
    }
    bar
}
