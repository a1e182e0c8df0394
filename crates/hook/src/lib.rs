//! The hook service, `pump-hook` (and `pump hook`): every closed set delivered. With `--pump` it
//! is logged in the PUMP workout logger in PUMP's contract ([`to_pump`]); with `--url URL` it is
//! POSTed as pump's own JSON ([`pump_bus::json::set_json`]), as follows.
//!
//! `--url URL` tells a web service of every set as it closes. A durable consumer of
//! the sets stream (named by `--name`) hands each set over; it is POSTed as JSON (the line
//! `pump sets --json` prints), with `Idempotency-Key: <set id>`, and acknowledged only once the
//! receiver took it — so a set is never lost across a restart of the hook, the receiver or NATS.
//!
//! What each answer does, so that no set is dropped without a word and none blocks the rest for
//! ever:
//! - **2xx**: taken.
//! - **403**: the receiver's own no (the PUMP workout logger's auto-logging is off): said, and
//!   not sent again.
//! - **401, 404, 405, 407** and a redirect not followed: the hook is set up wrong (key, URL);
//!   every set would meet it, so the set is tried again with backoff, the reason said each time,
//!   until the operator mends it. Redirects that keep the POST (307, 308) are followed, up to
//!   five; 301, 302 and 303 would turn it into a GET without the set, so they are refused with
//!   where they point.
//! - **Any other 4xx** (400, 413, 422 …): this set can never be taken. It is set aside — stored
//!   on `pump.hook.<name>.aside` (stream `PUMP_HOOK`, a month) with the answer — and the next set
//!   goes on.
//! - **5xx, 408, 429, no answer**: tried again with backoff; a set still not taken after
//!   `--set-aside-after` seconds is set aside the same way, so one set the receiver chokes on does
//!   not hold up every later one.
//! - **SIGTERM or Ctrl-C** while a set is being tried: the set is handed back (NAK), so the next
//!   start sends it at once instead of waiting out the acknowledgement time.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use pump_bus::connect::{connect, BusConfig};
use pump_bus::streams::SETS_STREAM;
use pump_proto::SetEvent;

mod args;
mod logger;
mod stats;
mod to_pump;
mod wall;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use stats::Stats;

pub use args::HookArgs;

/// How long one delivery may take before it counts as failed.
pub(crate) const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Where sets the receiver cannot take are kept, and for how long.
const ASIDE_STREAM: &str = "PUMP_HOOK";
const ASIDE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a set handed back on a stop waits before the server offers it again.
const HAND_BACK_DELAY: Duration = Duration::from_secs(1);
/// Redirects that keep the POST followed at most.
const MAX_REDIRECTS: usize = 5;

/// The receiver's answer to one POST.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Taken,
    /// 403: the receiver will not take sets now, by its own rule.
    Declined,
    /// The hook's setup is wrong (key, URL, a redirect): every set would meet it.
    Misdirected(String),
    /// This set can never be taken (its status, the reason).
    Unacceptable(u16, String),
    /// A 5xx, 408, 429, a timeout or no connection: try again.
    Failed(String),
}

/// What an HTTP status means for the set that met it.
pub(crate) fn answer(status: u16, location: Option<&str>) -> Answer {
    match status {
        200..=299 => Answer::Taken,
        403 => Answer::Declined,
        300..=399 => Answer::Misdirected(match location {
            Some(to) => format!("HTTP {status} to {to}: point --url there (a POST is never turned into a GET)"),
            None => format!("HTTP {status} without a Location"),
        }),
        401 | 407 => {
            Answer::Misdirected(format!("HTTP {status}: the receiver wants other credentials (--api-key-file)"))
        }
        404 | 405 => Answer::Misdirected(format!("HTTP {status}: no such endpoint there (--url)")),
        408 | 429 => Answer::Failed(format!("HTTP {status}")),
        400..=499 => Answer::Unacceptable(status, format!("HTTP {status}")),
        _ => Answer::Failed(format!("HTTP {status}")),
    }
}

/// Runs the hook until SIGTERM or Ctrl-C; with `ops`, serves `/healthz`, `/readyz` and
/// `/metrics` there (the `pump-hook` service; `pump hook` has none).
pub fn run(args: HookArgs, ops: Option<std::net::SocketAddr>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let stats = Arc::new(Stats::default());
        let listener = match ops {
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?)
            }
            None => None,
        };
        hook(args, stats, listener).await
    })
}

/// The ops endpoints, once the bus is there.
fn serve_ops(listener: tokio::net::TcpListener, client: &async_nats::Client, stats: &Arc<Stats>) {
    let (r, h, m, c) = (stats.clone(), stats.clone(), stats.clone(), client.clone());
    let ops = pump_bus::ops::Ops {
        not_ready: pump_bus::ops::ready_with_bus(client.clone(), move || {
            (!r.ready.load(Ordering::SeqCst)).then(|| "sets consumer not in place yet".to_string())
        }),
        health: Arc::new(move || h.health()),
        metrics: Arc::new(move || m.prometheus(pump_bus::ops::nats_connected(&c))),
        // A set waiting on its receiver is not what a restart cures.
        stuck: pump_bus::ops::never_stuck(),
    };
    tokio::spawn(pump_bus::ops::serve(listener, ops, tokio_util::sync::CancellationToken::new()));
}

async fn hook(args: HookArgs, stats: Arc<Stats>, ops: Option<tokio::net::TcpListener>) -> Result<()> {
    // Checked here, not by clap: either may come from the config file's [hook] table.
    match (&args.url, &args.pump) {
        (None, None) => bail!("where to? --pump BASE_URL (the PUMP workout logger) or --url URL (pump's own JSON)"),
        (Some(_), Some(_)) => bail!("--url and --pump both given: one hook sends to one place"),
        _ => {}
    }
    let http = http_client()?;
    let api_key = match &args.api_key_file {
        Some(f) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?.trim().to_string())
        }
        None => None,
    };
    // Every flag is checked before the bus is: a bad one is one line at once, not after a wait.
    let pump = args.pump.as_deref().map(|b| to_pump::Pump::new(&args, b, http.clone(), api_key.clone())).transpose()?;
    let target = match args.url.as_deref() {
        Some(url) => Some(
            reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .with_context(|| format!("--url {url}: expected http://HOST[:PORT]/PATH or https://…"))?,
        ),
        None => None,
    };
    let name = pump_bus::subject::CameraId::new(&args.name)
        .map_err(|_| anyhow::anyhow!("--name {:?}: letters, digits, '-' and '_'", args.name))?;
    let mut bus = BusConfig::new(&args.nats_url, "pump-hook");
    bus.auth = args.nats_auth.resolve().map_err(anyhow::Error::msg)?;
    let client = connect(&bus).await?;
    if let Some(listener) = ops {
        serve_ops(listener, &client, &stats);
    }
    let js = jetstream::new(client.clone());
    js.get_or_create_stream(jetstream::stream::Config {
        name: ASIDE_STREAM.into(),
        subjects: vec!["pump.hook.>".into()],
        max_age: ASIDE_MAX_AGE,
        ..Default::default()
    })
    .await
    .context("cannot set up the stream of sets set aside")?;
    // Started beside pump-sets (pump up, compose, k8s), the hook may come first: it waits for
    // the stream pump-sets makes, and says so once.
    let mut said = false;
    let stream = loop {
        match js.get_stream(SETS_STREAM).await {
            Ok(s) => break s,
            Err(e) if !said => {
                eprintln!("pump hook: waiting for the sets stream {SETS_STREAM} (pump-sets makes it): {e}");
                said = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown_signal() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
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
    let messages = consumer.messages().await.context("cannot read the sets stream")?;
    stats.ready.store(true, Ordering::SeqCst);
    let aside = format!("pump.hook.{name}.aside");
    let give_up = Duration::from_secs(args.set_aside_after_s.max(1));
    let max_backoff = Duration::from_secs(args.max_backoff_s.max(1));
    if let Some(pump) = pump {
        eprintln!("pump hook {name}: logging sets in PUMP at {}", pump.shown());
        let (hook, replicas) = (name.to_string(), args.streams_replicas);
        let limits = to_pump::Limits { give_up, max_backoff, replicas };
        return to_pump::deliver(pump, client, js, messages, hook, aside, limits, stats, shutdown_signal()).await;
    }
    let Some(target) = target else { bail!("no --url") };
    eprintln!("pump hook {name}: posting sets to {}", shown(&target));
    let mut messages = messages;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (msg, set) = tokio::select! {
            _ = &mut stop => return Ok(()),
            m = next_set(&mut messages, &js, &aside) => m?,
        };
        let body = Bytes::from(pump_bus::json::set_json(&set).to_string());
        let mut backoff = Duration::from_secs(1);
        let first_try = Instant::now();
        loop {
            let answer = tokio::select! {
                _ = &mut stop => return hand_back(&client, messages, &msg, &set.set_id).await,
                a = post(&http, &target, body.clone(), &set.set_id, api_key.as_deref()) => a,
            };
            let again = match answer {
                Answer::Taken => {
                    println!("{}: set {} delivered", set.camera, set.set_id);
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Answer::Declined => {
                    stats.declined.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "pump hook: {} refused set {} with 403 (auto-logging is off there?); not retried",
                        shown(&target),
                        set.set_id
                    );
                    break;
                }
                Answer::Unacceptable(status, why) => {
                    set_aside(&js, &aside, body.clone(), &set.set_id, &why).await?;
                    stats.set_aside.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "pump hook: {} cannot take set {} ({status}); set aside on {aside}",
                        shown(&target),
                        set.set_id
                    );
                    break;
                }
                Answer::Misdirected(why) => format!("{why}; the hook is set up wrong"),
                Answer::Failed(why) if first_try.elapsed() >= give_up => {
                    set_aside(&js, &aside, body.clone(), &set.set_id, &why).await?;
                    stats.set_aside.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "pump hook: set {} still not delivered after {}s ({why}); set aside on {aside}, the next goes on",
                        set.set_id,
                        give_up.as_secs()
                    );
                    break;
                }
                Answer::Failed(why) => why,
            };
            eprintln!("pump hook: set {} not delivered ({again}); again in {}s", set.set_id, backoff.as_secs());
            stats.waiting.store(true, Ordering::Relaxed);
            // Still ours: tell the server we are working on it, so it is not handed on.
            let _ = msg.ack_with(AckKind::Progress).await;
            tokio::select! {
                _ = &mut stop => return hand_back(&client, messages, &msg, &set.set_id).await,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max_backoff);
        }
        stats.waiting.store(false, Ordering::Relaxed);
        // Acknowledged (double ack: the server confirms) before the next set is taken.
        msg.double_ack().await.map_err(|e| anyhow::anyhow!("acknowledging set {}: {e}", set.set_id))?;
    }
}

/// The next set of the stream; one that does not decode is set aside (and acknowledged) on the
/// way, so it never blocks the sets after it.
pub(crate) async fn next_set(
    messages: &mut consumer::pull::Stream,
    js: &jetstream::Context,
    aside: &str,
) -> Result<(jetstream::Message, SetEvent)> {
    loop {
        let Some(msg) = messages.next().await else { bail!("the sets stream closed") };
        let msg = msg.map_err(|e| anyhow::anyhow!("reading the sets stream: {e}"))?;
        match SetEvent::decode(msg.payload.clone()) {
            Ok(set) => return Ok((msg, set)),
            Err(_) => {
                eprintln!("pump hook: a stored set does not decode; set aside");
                set_aside(js, aside, msg.payload.clone(), "", "does not decode").await?;
                msg.double_ack().await.map_err(|e| anyhow::anyhow!("acknowledging a set that does not decode: {e}"))?;
            }
        }
    }
}

/// Gives the set being tried back to the server on a clean stop: the next start gets it at once.
pub(crate) async fn hand_back(
    client: &async_nats::Client,
    messages: consumer::pull::Stream,
    msg: &jetstream::Message,
    set_id: &str,
) -> Result<()> {
    // The pull request this process still has open would take the set straight back, to be lost
    // when the process ends: it goes first, and the set comes back a moment later, when only
    // the next start asks. Flushed: an unsent NAK is as good as none.
    drop(messages);
    let nak = async {
        client.flush().await.map_err(|e| e.to_string())?;
        msg.ack_with(AckKind::Nak(Some(HAND_BACK_DELAY))).await.map_err(|e| e.to_string())?;
        client.flush().await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(5), nak).await.unwrap_or_else(|_| Err("no answer".into())) {
        Ok(()) => eprintln!("pump hook: stopping; set {set_id} handed back, the next start sends it"),
        Err(e) => eprintln!("pump hook: stopping; set {set_id} could not be handed back ({e}): it comes back later"),
    }
    Ok(())
}

/// Stores a set the receiver cannot take, with why, and waits for the server to have it.
pub(crate) async fn set_aside(
    js: &jetstream::Context,
    subject: &str,
    body: Bytes,
    set_id: &str,
    why: &str,
) -> Result<()> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Pump-Set-Id", set_id);
    headers.insert("Pump-Why", why);
    let ack = js
        .publish_with_headers(subject.to_string(), headers, body)
        .await
        .with_context(|| format!("setting set {set_id} aside"))?;
    ack.await.with_context(|| format!("setting set {set_id} aside"))?;
    Ok(())
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

/// The HTTP client: redirects followed only where they keep the POST (307, 308).
fn http_client() -> Result<reqwest::Client> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let keeps_post = matches!(attempt.status().as_u16(), 307 | 308);
        if keeps_post && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .redirect(redirects)
        .timeout(POST_TIMEOUT)
        .user_agent(concat!("pump-hook/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// The URL as said in logs: without a password in it.
pub(crate) fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// One POST of a set.
async fn post(http: &reqwest::Client, url: &reqwest::Url, body: Bytes, set_id: &str, api_key: Option<&str>) -> Answer {
    let mut req =
        http.post(url.clone()).header("content-type", "application/json").header("idempotency-key", set_id).body(body);
    if let Some(key) = api_key {
        req = req.header("x-api-key", key);
    }
    match req.send().await {
        Ok(r) => {
            let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
            let status = r.status().as_u16();
            // Read the answer through, so the receiver is not cut off mid-reply.
            let _ = r.bytes().await;
            answer(status, location.as_deref())
        }
        Err(e) if e.is_timeout() => Answer::Failed(format!("no answer within {}s", POST_TIMEOUT.as_secs())),
        Err(e) => Answer::Failed(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_means_one_thing_for_the_set() {
        assert_eq!(answer(204, None), Answer::Taken);
        assert_eq!(answer(403, None), Answer::Declined);
        for status in [401, 404, 405, 407, 301, 302, 303, 307] {
            assert!(matches!(answer(status, Some("/x")), Answer::Misdirected(_)), "{status}");
        }
        assert!(matches!(answer(302, Some("/there")), Answer::Misdirected(w) if w.contains("/there")));
        for status in [400, 413, 422] {
            assert!(matches!(answer(status, None), Answer::Unacceptable(s, _) if s == status));
        }
        for status in [408, 429, 500, 502, 503] {
            assert!(matches!(answer(status, None), Answer::Failed(_)), "{status}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let u = reqwest::Url::parse("https://me:s3cret@[::1]:8443/api/sets").unwrap();
        assert_eq!(shown(&u), "https://me:***@[::1]:8443/api/sets");
    }
}
