//! Operational HTTP endpoints every service serves on its own port:
//! `/healthz` (200 and a JSON account of itself), `/readyz` (200 when ready, 503 with the reason
//! otherwise) and `/metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// What a service reports; each closure is called per request.
#[derive(Clone)]
pub struct Ops {
    /// `None` when ready, else why not.
    pub not_ready: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    pub health: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ops")
    }
}

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, ops: Ops, shutdown: CancellationToken) -> std::io::Result<()> {
    let (h, r, m) = (ops.clone(), ops.clone(), ops);
    let app = Router::new()
        .route("/healthz", get(move || async move { axum::Json((h.health)()) }))
        .route(
            "/readyz",
            get(move || async move {
                match (r.not_ready)() {
                    None => (StatusCode::OK, "ready\n".to_string()),
                    Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], (m.metrics)()).into_response()
            }),
        );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// Builds Prometheus text, one metric family at a time.
#[derive(Debug, Default)]
pub struct PromText {
    out: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl PromText {
    /// Starts a family: `kind` is `counter`, `gauge` or `summary`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.out, "{name}{labels} {value}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// 1 when the client is connected to NATS, else 0.
pub fn nats_connected(client: &async_nats::Client) -> f64 {
    f64::from(u8::from(client.connection_state() == async_nats::connection::State::Connected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_escaped_labels() {
        let mut p = PromText::default();
        p.family("pump_frames_total", "counter", "Frames.").sample("pump_frames_total", &[("camera", "a\"b")], 3.0);
        let t = p.finish();
        assert!(t.contains("# TYPE pump_frames_total counter"));
        assert!(t.contains("pump_frames_total{camera=\"a\\\"b\"} 3"));
    }
}
