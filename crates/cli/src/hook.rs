//! `pump hook --url URL`: tells a web service of every set as it closes. A durable consumer of
//! the sets stream (named by `--name`) hands each set over; it is POSTed as JSON (the line
//! `pump sets --json` prints), with `Idempotency-Key: <set id>`, and acknowledged only once the
//! receiver answered 2xx — so a set is never lost across a restart of the hook, the receiver or
//! NATS. A 5xx or no answer is retried with backoff; a 4xx is the receiver's no (403: the PUMP
//! workout logger's auto-logging is off) and is reported, not retried.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use prost::Message;
use pump_bus::connect::{connect, BusConfig};
use pump_bus::streams::SETS_STREAM;
use pump_proto::SetEvent;

use crate::args::HookArgs;

/// How long one delivery may take before it counts as failed.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The receiver's answer to one POST.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Taken,
    /// A 4xx: the receiver will not take this set, however often it is sent.
    Refused(u16),
    /// A 5xx, a timeout or no connection: try again.
    Failed(String),
}

pub fn run(args: HookArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(hook(args))
}

async fn hook(args: HookArgs) -> Result<()> {
    let target = Target::parse(&args.url)?;
    let api_key = match &args.api_key_file {
        Some(f) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?.trim().to_string())
        }
        None => None,
    };
    let name = pump_bus::subject::CameraId::new(&args.name)
        .map_err(|_| anyhow::anyhow!("--name {:?}: letters, digits, '-' and '_'", args.name))?;
    let mut bus = BusConfig::new(&args.nats_url, "pump-hook");
    bus.auth = args.nats_auth.resolve().map_err(anyhow::Error::msg)?;
    let client = connect(&bus).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(SETS_STREAM).await.context("no sets stream yet (start the services first)")?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &format!("pump-hook-{name}"),
            consumer::pull::Config {
                durable_name: Some(format!("pump-hook-{name}")),
                // A new hook starts with the sets closed from now on; a known one where it left.
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                // Never given up on: the hook retries itself, and redelivery after a restart.
                ack_wait: Duration::from_secs(600),
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await
        .context("cannot create the hook's consumer")?;
    let mut messages = consumer.messages().await.context("cannot read the sets stream")?;
    eprintln!("pump hook {name}: posting sets to {}", target.display());
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let msg = tokio::select! {
            _ = &mut stop => return Ok(()),
            m = messages.next() => m,
        };
        let Some(msg) = msg else { bail!("the sets stream closed") };
        let msg = msg.map_err(|e| anyhow::anyhow!("reading the sets stream: {e}"))?;
        let Ok(set) = SetEvent::decode(msg.payload.clone()) else {
            eprintln!("pump hook: a stored set does not decode; skipped");
            let _ = msg.ack().await;
            continue;
        };
        let body = Bytes::from(crate::client::set_json(&set).to_string());
        let mut backoff = Duration::from_secs(1);
        loop {
            match post(&target, body.clone(), &set.set_id, api_key.as_deref()).await {
                Answer::Taken => {
                    println!("{}: set {} delivered", set.camera, set.set_id);
                    break;
                }
                Answer::Refused(code) => {
                    let why = if code == 403 { " (auto-logging is off there?)" } else { "" };
                    eprintln!(
                        "pump hook: {} refused set {} with {code}{why}; not retried",
                        target.display(),
                        set.set_id
                    );
                    break;
                }
                Answer::Failed(e) => {
                    eprintln!("pump hook: set {} not delivered ({e}); again in {}s", set.set_id, backoff.as_secs());
                    // Still ours: tell the server we are working on it, so it is not handed on.
                    let _ = msg.ack_with(AckKind::Progress).await;
                    tokio::select! {
                        _ = &mut stop => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(args.max_backoff_s.max(1)));
                }
            }
        }
        // Acknowledged (double ack: the server confirms) before the next set is taken.
        msg.double_ack().await.map_err(|e| anyhow::anyhow!("acknowledging set {}: {e}", set.set_id))?;
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Where sets go: scheme, host, port, path.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        let (tls, rest) = match url.split_once("://") {
            Some(("http", r)) => (false, r),
            Some(("https", r)) => (true, r),
            _ => bail!("--url {url}: expected http://HOST[:PORT]/PATH or https://…"),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().with_context(|| format!("--url {url}: bad port"))?),
            None => (authority.to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            bail!("--url {url}: no host");
        }
        Ok(Self { tls, host, port, path: path.to_string() })
    }

    fn display(&self) -> String {
        format!("{}://{}:{}{}", if self.tls { "https" } else { "http" }, self.host, self.port, self.path)
    }
}

/// One POST on a connection of its own.
async fn post(target: &Target, body: Bytes, set_id: &str, api_key: Option<&str>) -> Answer {
    match tokio::time::timeout(POST_TIMEOUT, try_post(target, body, set_id, api_key)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => Answer::Taken,
        Ok(Ok(status)) if (400..500).contains(&status) && status != 408 && status != 429 => Answer::Refused(status),
        Ok(Ok(status)) => Answer::Failed(format!("HTTP {status}")),
        Ok(Err(e)) => Answer::Failed(format!("{e:#}")),
        Err(_) => Answer::Failed(format!("no answer within {}s", POST_TIMEOUT.as_secs())),
    }
}

async fn try_post(target: &Target, body: Bytes, set_id: &str, api_key: Option<&str>) -> Result<u16> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await?;
    let mut req = Request::post(target.path.as_str())
        .header("host", format!("{}:{}", target.host, target.port))
        .header("content-type", "application/json")
        .header("idempotency-key", set_id);
    if let Some(key) = api_key {
        req = req.header("x-api-key", key);
    }
    let req = req.body(Full::new(body))?;
    let response = if target.tls {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(target.host.clone())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
        send(TokioIo::new(tls), req).await?
    } else {
        send(TokioIo::new(tcp), req).await?
    };
    Ok(response)
}

async fn send<I>(io: I, req: Request<Full<Bytes>>) -> Result<u16>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let response: hyper::Response<Incoming> = sender.send_request(req).await?;
    let status = response.status().as_u16();
    // Read the answer through, so the receiver is not cut off mid-reply.
    let _ = response.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_understood_or_refused_in_one_line() {
        let t = Target::parse("http://127.0.0.1:8080/api/sets").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port, t.path.as_str()), (false, "127.0.0.1", 8080, "/api/sets"));
        let t = Target::parse("https://logger.example").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/"));
        assert!(Target::parse("ftp://x").is_err() && Target::parse("http://:80/").is_err());
    }
}
