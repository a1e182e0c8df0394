//! gRPC client commands (`pump cameras`, `pump poses`, `pump sets CAMERA`): the gateway is the
//! one way in; human-readable by default, `--json` for scripts.

use anyhow::{Context, Result};
use futures::StreamExt;
use pump_bus::json::{set_json, utc};
use pump_proto::pose_query_client::PoseQueryClient;
use pump_proto::{
    GetLatestPosesRequest, GetSnapshotRequest, ListCamerasRequest, ListSetsRequest, PoseFrame, SetEvent,
    StreamPosesRequest, StreamSetsRequest,
};
use serde_json::json;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::args::ClientArgs;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Puts the gateway's token, if any, on every request.
#[derive(Debug, Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Client = PoseQueryClient<InterceptedService<Channel, Bearer>>;

/// The token from its file or the environment.
fn token(gw: &ClientArgs) -> Result<Option<MetadataValue<Ascii>>> {
    let token = pump_bus::auth::secret(gw.token_file.as_deref(), gw.token.as_deref(), "gateway token")
        .map_err(anyhow::Error::msg)?;
    token.map(|t| format!("Bearer {t}").parse().context("the token is not valid in a header")).transpose()
}

async fn connect(gw: &ClientArgs) -> Result<Client> {
    let addr = &gw.grpc_addr;
    let url = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else if gw.tls_ca.is_some() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    };
    let mut endpoint = Channel::from_shared(url.clone())
        .with_context(|| format!("bad gateway address {addr}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        // A live stream's backlog sits in this window when the reader pauses: 64 KB (as gRPC's
        // Go and C cores) rather than 2 MB keeps what a paused `pump poses --follow` then prints fresh.
        .initial_stream_window_size(Some(64 * 1024));
    if let Some(ca) = &gw.tls_ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the gateway at {url} (is pump-gateway running? set --grpc-addr)"))?;
    Ok(PoseQueryClient::with_interceptor(channel, Bearer(token(gw)?)))
}

/// Prints one line and flushes it (a follower's reader sees each as it comes); unlike
/// `println!`, a closed pipe is an error to return, not a panic.
fn say(line: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())
}

/// A gRPC failure as one line: the status message, not the transport's debug dump.
fn rpc(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code().description(), e.message())
}

pub fn cameras(gw: &ClientArgs, as_json: bool) -> Result<()> {
    runtime()?.block_on(async {
        let mut q = connect(gw).await?;
        let cams = q.list_cameras(ListCamerasRequest {}).await.map_err(rpc)?.into_inner().cameras;
        if !as_json && !cams.is_empty() {
            say(format_args!(
                "{:<20} {:>10} {:>10} {:>10} {:>10} {:>16} {:>11}",
                "CAMERA", "FRAME FPS", "POSE FPS", "MODEL FPS", "DROPPED", "LAST FRAME", "LAST POSE"
            ))?;
        }
        let ago = |ns: i64| {
            if ns == 0 {
                "-".to_string()
            } else {
                format!("{:.1} s ago", (pump_bus::clock::now_ns() - ns) as f64 / 1e9)
            }
        };
        for c in cams {
            if as_json {
                say(json!({"camera": c.camera, "last_pose_ns": c.last_pose_ns, "last_frame_id": c.last_frame_id,
                           "last_frame_ns": c.last_frame_ns, "frame_fps": c.frame_fps, "pose_fps": c.pose_fps,
                           "inference_fps": c.inference_fps, "frames_received": c.frames_received,
                           "frames_dropped": c.frames_dropped, "ended": c.ended,
                           "pose_rate_floor": c.pose_rate_floor, "below_pose_rate_floor": c.below_pose_rate_floor}))?;
            } else {
                let last_frame = if c.ended { "ended".to_string() } else { ago(c.last_frame_ns) };
                say(format_args!(
                    "{:<20} {:>10.1} {:>10.1} {:>10.1} {:>10} {:>16} {:>11}",
                    c.camera,
                    c.frame_fps,
                    c.pose_fps,
                    c.inference_fps,
                    c.frames_dropped,
                    last_frame,
                    ago(c.last_pose_ns)
                ))?;
                if c.below_pose_rate_floor {
                    say(format_args!(
                        "  {}: poses under {} a second, rep counts not exact (its sets are pending)",
                        c.camera, c.pose_rate_floor
                    ))?;
                }
            }
        }
        Ok(())
    })
}

fn pose_line(p: &PoseFrame, as_json: bool) -> String {
    if as_json {
        let people: Vec<_> = p
            .people
            .iter()
            .map(|person| {
                let b = person.r#box.unwrap_or_default();
                json!({"box": [b.x1, b.y1, b.x2, b.y2], "score": person.score,
                       "keypoints": person.keypoints.iter().map(|k| [k.x, k.y, k.confidence]).collect::<Vec<_>>()})
            })
            .collect();
        json!({"camera": p.camera, "frame_id": p.frame_id, "ts": p.source_ts_ns as f64 / 1e9,
               "age_ms": p.publish_ts_ns.saturating_sub(p.capture_ts_ns) as f64 / 1e6, "end_of_stream": p.end_of_stream, "poses": people})
        .to_string()
    } else if p.end_of_stream {
        format!("{} end of stream", p.camera)
    } else {
        let scores: Vec<String> = p.people.iter().map(|x| format!("{:.2}", x.score)).collect();
        format!(
            "{} frame {:>6}  {} people [{}]  age {:.1} ms",
            p.camera,
            p.frame_id,
            p.people.len(),
            scores.join(", "),
            p.publish_ts_ns.saturating_sub(p.capture_ts_ns) as f64 / 1e6
        )
    }
}

/// The newest pose frame, or (`follow` = Some(wait for an unknown camera)) every one from now on.
pub fn poses(gw: &ClientArgs, camera: &str, follow: Option<bool>, as_json: bool) -> Result<()> {
    runtime()?.block_on(async {
        let mut q = connect(gw).await?;
        if let Some(wait_for_camera) = follow {
            let mut s = q
                .stream_poses(StreamPosesRequest { camera: camera.into(), from_ns: 0, wait_for_camera })
                .await
                .map_err(rpc)?
                .into_inner();
            while let Some(p) = s.next().await {
                say(pose_line(&p.map_err(rpc)?, as_json))?;
            }
        } else {
            let p =
                q.get_latest_poses(GetLatestPosesRequest { camera: camera.into() }).await.map_err(rpc)?.into_inner();
            say(pose_line(&p, as_json))?;
        }
        Ok(())
    })
}

/// How sets are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFormat {
    Text,
    Json,
    /// One row per rep, after [`CSV_HEADER`].
    Csv,
}

/// The columns of `pump sets --csv`.
pub const CSV_HEADER: &str = "camera,set_id,exercise,start_utc,end_utc,rep,depth_deg,duration_s,pending";

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The lowest and highest of `xs`, formatted with `unit`, or "–" when there are none.
fn span_of<T: Copy + PartialOrd + std::fmt::Display>(xs: &[T], unit: &str, digits: usize) -> String {
    let lo = xs.iter().copied().fold(None, |m: Option<T>, x| Some(m.map_or(x, |m| if x < m { x } else { m })));
    let hi = xs.iter().copied().fold(None, |m: Option<T>, x| Some(m.map_or(x, |m| if x > m { x } else { m })));
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{lo:.digits$}–{hi:.digits$}{unit}"),
        _ => "–".into(),
    }
}

fn set_line(s: &SetEvent, format: SetFormat) -> String {
    match format {
        SetFormat::Json => set_json(s).to_string(),
        SetFormat::Csv => {
            let head = [&s.camera, &s.set_id, &s.exercise, &utc(s.start_unix_ns), &utc(s.end_unix_ns)]
                .map(|f| csv_field(f))
                .join(",");
            (0..s.reps as usize)
                .map(|i| {
                    let depth = s.rep_depths_deg.get(i).map(|d| format!("{d:.1}")).unwrap_or_default();
                    let took = s.rep_durations_s.get(i).map(|d| format!("{d:.2}")).unwrap_or_default();
                    format!("{head},{},{depth},{took},{}", i + 1, s.pending)
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        SetFormat::Text => format!(
            "{:<12} {:<20} {:>3} reps of {:<12} ({:.0} % sure)  depth {}  tempo {}  {}{}{}{}",
            s.camera,
            utc(s.start_unix_ns),
            s.reps,
            s.exercise,
            s.confidence * 100.0,
            span_of(&s.rep_depths_deg, "°", 0),
            span_of(&s.rep_durations_s, " s", 1),
            s.set_id,
            if s.pending { "  pending: confirm" } else { "" },
            if s.continued { "  continued in the next set" } else { "" },
            if s.clip.is_empty() { String::new() } else { format!("  clip: pump clip {}", s.set_id) }
        ),
    }
}

pub fn sets(gw: &ClientArgs, camera: Option<&str>, follow: bool, format: SetFormat) -> Result<()> {
    let followed = match (follow, camera) {
        (true, None) => anyhow::bail!("--follow needs a CAMERA"),
        (true, Some(camera)) => Some(camera),
        (false, _) => None,
    };
    runtime()?.block_on(async {
        let mut q = connect(gw).await?;
        // Following starts before the listing, so a set closed in between is in one or the other;
        // what both have is printed once.
        let live = match followed {
            Some(camera) => {
                Some(q.stream_sets(StreamSetsRequest { camera: camera.into() }).await.map_err(rpc)?.into_inner())
            }
            None => None,
        };
        let listed = q
            .list_sets(ListSetsRequest { camera: camera.unwrap_or_default().into(), ..Default::default() })
            .await
            .map_err(rpc)?
            .into_inner()
            .sets;
        if format == SetFormat::Csv {
            say(CSV_HEADER.to_string())?;
        }
        for s in listed.iter().filter(|s| format != SetFormat::Csv || s.reps > 0) {
            say(set_line(s, format))?;
        }
        if let Some(mut live) = live {
            let shown: std::collections::HashSet<&str> = listed.iter().map(|s| s.set_id.as_str()).collect();
            while let Some(s) = live.next().await {
                let s = s.map_err(rpc)?;
                if !shown.contains(s.set_id.as_str()) && (format != SetFormat::Csv || s.reps > 0) {
                    say(set_line(&s, format))?;
                }
            }
        }
        Ok(())
    })
}

pub fn snapshot(gw: &ClientArgs, camera: &str, overlay: bool, output: &std::path::Path) -> Result<()> {
    runtime()?.block_on(async {
        let mut q = connect(gw).await?;
        let s = q.get_snapshot(GetSnapshotRequest { camera: camera.into(), overlay }).await.map_err(rpc)?.into_inner();
        std::fs::write(output, &s.jpeg).with_context(|| format!("cannot write {}", output.display()))?;
        eprintln!("{}: frame {} ({}x{}) written to {}", s.camera, s.frame_id, s.width, s.height, output.display());
        Ok(())
    })
}

/// `pump clip`: a set's clip, streamed from the gateway into a file.
pub fn clip(gw: &ClientArgs, set_id: &str, output: Option<&std::path::Path>) -> Result<()> {
    let output = output.map(std::path::Path::to_path_buf).unwrap_or_else(|| format!("{set_id}.avi").into());
    runtime()?.block_on(async {
        let mut q = connect(gw).await?;
        let req = pump_proto::GetSetClipRequest { set_id: set_id.into() };
        let mut chunks = q.get_set_clip(req).await.map_err(rpc)?.into_inner();
        let mut bytes = Vec::new();
        while let Some(c) = chunks.message().await.map_err(rpc)? {
            bytes.extend_from_slice(&c.data);
        }
        std::fs::write(&output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
        eprintln!("set {set_id}: clip of {} bytes written to {}", bytes.len(), output.display());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("squat"), "squat");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_set_without_wall_clock_or_per_rep_figures_still_prints() {
        let set = SetEvent {
            camera: "c".into(),
            set_id: "s".into(),
            reps: 2,
            exercise: "squat".into(),
            ..Default::default()
        };
        assert_eq!(utc(0), "");
        let text = set_line(&set, SetFormat::Text);
        assert!(text.contains("2 reps of squat") && text.contains("depth –") && text.contains("tempo –"), "{text}");
        assert_eq!(set_line(&set, SetFormat::Csv), "c,s,squat,,,1,,,false\nc,s,squat,,,2,,,false");
    }
}
