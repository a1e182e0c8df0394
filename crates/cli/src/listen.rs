//! `pump listen`: prints the pose frames arriving on NATS, one JSON line each, in the
//! `pump detect` line format plus `camera`, `frame_id` and `age_ms` (publish − capture).

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, Result};
use futures::StreamExt;
use pump_bus::codec::decode_pose_frame;
use pump_bus::connect::{connect, BusConfig};
use pump_bus::subject::{self, CameraId, POSES_ALL};
use serde::Serialize;

use crate::args::ListenArgs;
use crate::output::PoseJson;

#[derive(Debug, Serialize)]
struct ListenLine {
    camera: String,
    frame: u64,
    ts: f64,
    shape: [u32; 2],
    age_ms: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    end_of_stream: bool,
    poses: Vec<PoseJson>,
}

pub fn run(args: ListenArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(listen(args))
}

async fn listen(args: ListenArgs) -> Result<()> {
    let cameras: Vec<CameraId> = args.cameras.iter().map(CameraId::new).collect::<Result<_, _>>()?;
    let mut bus = BusConfig::new(&args.nats_url, "pump-listen");
    bus.auth = args.nats_auth.resolve().map_err(anyhow::Error::msg)?;
    let client = connect(&bus).await?;
    // The client connects in the background; a server that refuses us ends the listen with why.
    let refused = pump_bus::connect::refused(&bus);
    tokio::pin!(refused);
    let subjects: Vec<String> =
        if cameras.is_empty() { vec![POSES_ALL.to_string()] } else { cameras.iter().map(subject::poses).collect() };
    let mut subs = Vec::new();
    for s in &subjects {
        subs.push(client.subscribe(s.clone()).await.with_context(|| format!("cannot subscribe to {s}"))?);
    }
    let mut messages = futures::stream::select_all(subs);
    // `--until-end` with named cameras stops once each has sent its end of stream.
    let mut open: BTreeSet<String> = cameras.iter().map(|c| c.to_string()).collect();
    let stdout = std::io::stdout();
    loop {
        let msg = tokio::select! {
            m = messages.next() => m,
            e = &mut refused => return Err(e.into()),
        };
        let Some(msg) = msg else { break };
        let Ok(p) = decode_pose_frame(&msg.payload) else { continue };
        let line = ListenLine {
            camera: p.camera.clone(),
            frame: p.frame_id,
            ts: (p.source_ts_ns as f64 / 1e9 * 1e6).round() / 1e6,
            shape: [p.height, p.width],
            age_ms: (p.publish_ts_ns.saturating_sub(p.capture_ts_ns) as f64 / 1e4).round() / 100.0,
            end_of_stream: p.end_of_stream,
            poses: p.people.iter().map(|person| PoseJson::from(&pump_pose::proto::from_person(person))).collect(),
        };
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n").and_then(|()| out.flush())?;
        if p.end_of_stream && args.until_end {
            open.remove(&p.camera);
            if open.is_empty() {
                return Ok(());
            }
        }
    }
    Ok(())
}
