//! One pump-sets counts per bus. The service owns a durable consumer that it recreates at each
//! start (at its checkpoint), so a second instance counting at the same time would delete the
//! first one's consumer and the first would stop counting while everything looked healthy.
//! Instead, the counting instance renews a lease every half second (a message on
//! `pump.sets-lease` in the checkpoint stream), and any other instance is a hot standby: connected,
//! its streams set up, its `/readyz` saying "standby", it watches the lease and takes over once
//! the lease has gone unrenewed for [`WATCH`] (a crash, SIGKILL, a lost host), reading the
//! checkpoints only then, so it resumes where the other one stopped. A clean stop releases the
//! lease, so a standby or a restart takes over at once. A standby that took over from one that was
//! alive after all (a renewal stalled longer than `WATCH`) deletes its consumer; that one then
//! fails loudly and a set both published is stored once (the server deduplicates by set id).
//!
//! No clocks are compared: an instance watches whether the lease's stream sequence moves.

use std::time::{Duration, Instant};

use crate::error::{Context, Result};
use async_nats::jetstream;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{info, warn};

/// The lease's subject, kept (last message only) by the checkpoint stream.
pub const LEASE_SUBJECT: &str = pump_bus::subject::SETS_LEASE;
/// How often the holder renews the lease.
const RENEW: Duration = Duration::from_millis(500);
/// How long the lease may go unrenewed before a standby takes it: five missed renewals, so a
/// holder on a busy host is not taken over from, while a dead one is within 3 s.
const WATCH: Duration = Duration::from_millis(2500);
/// How often a standby looks at the lease.
const POLL: Duration = Duration::from_millis(250);
const RELEASED: &str = "released";

/// Names this process for the other instances' error line: its pid and host.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string());
    format!("pid {} on {}", std::process::id(), host.unwrap_or_else(|_| "this host".into()))
}

/// The lease this instance holds; renewed by a task of its own until released.
#[derive(Debug)]
pub struct Lease {
    js: jetstream::Context,
    instance: String,
    /// Ends the renewing task when released, or when the lease is dropped (the service's future
    /// abandoned): a lease nobody holds must lapse.
    renewing: DropGuard,
    task: tokio::task::JoinHandle<()>,
}

/// What the lease says now.
enum Seen {
    /// Nobody holds it: never taken, or released.
    Free,
    /// Held; the sequence moves with each renewal.
    Held { seq: u64, holder: String },
    /// The stream could not be read: wait and look again.
    Unknown,
}

async fn last_lease(store: &jetstream::stream::Stream) -> Seen {
    match store.get_last_raw_message_by_subject(LEASE_SUBJECT).await {
        Ok(m) => {
            let text = String::from_utf8_lossy(&m.payload).into_owned();
            if text == RELEASED {
                Seen::Free
            } else {
                Seen::Held { seq: m.sequence, holder: text.trim_start_matches("held ").to_string() }
            }
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Seen::Free,
        Err(e) => {
            warn!(error = %e, "cannot read the sets lease");
            Seen::Unknown
        }
    }
}

async fn publish(js: &jetstream::Context, payload: String) -> Result<()> {
    let ack = js.publish(LEASE_SUBJECT, payload.into()).await.context("cannot write the sets lease")?;
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .context("no answer writing the sets lease")?
        .context("cannot write the sets lease")?;
    Ok(())
}

impl Lease {
    /// Takes the lease: at once when nobody holds it, else once its holder stops renewing it
    /// (a standby meanwhile: `on_standby` is called once, when a renewal shows the holder alive).
    /// `None` when `shutdown` came first.
    pub async fn acquire(
        js: &jetstream::Context,
        store: &jetstream::stream::Stream,
        instance: &str,
        shutdown: &CancellationToken,
        on_standby: impl FnOnce(),
    ) -> Result<Option<Self>> {
        let mut on_standby = Some(on_standby);
        // The sequence last seen and when it was first seen: unchanged for WATCH, the holder is gone.
        let mut last: Option<(u64, Instant)> = None;
        loop {
            match last_lease(store).await {
                Seen::Free => break,
                Seen::Unknown => {}
                Seen::Held { seq, holder } => match last {
                    Some((s, since)) if s == seq => {
                        if since.elapsed() >= WATCH {
                            if on_standby.is_none() {
                                info!(holder = %holder, "the counting pump-sets stopped renewing its lease: taking over");
                            }
                            break;
                        }
                    }
                    _ => {
                        if last.is_some() {
                            if let Some(f) = on_standby.take() {
                                info!(holder = %holder, "standby: another pump-sets counts every camera; taking over when it stops");
                                f();
                            }
                        }
                        last = Some((seq, Instant::now()));
                    }
                },
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        publish(js, format!("held {instance}")).await?;
        let renewing = CancellationToken::new();
        let task = tokio::spawn({
            let (js, token, payload) = (js.clone(), renewing.clone(), format!("held {instance}"));
            async move {
                let mut tick = tokio::time::interval(RENEW);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(e) = publish(&js, payload.clone()).await {
                                warn!(error = %e, "cannot renew the sets lease");
                            }
                        }
                    }
                }
            }
        });
        Ok(Some(Self { js: js.clone(), instance: instance.to_string(), renewing: renewing.drop_guard(), task }))
    }

    /// Stops renewing and frees the lease for the next instance at once.
    pub async fn release(self) {
        let Self { js, instance, renewing, task } = self;
        drop(renewing);
        let _ = task.await;
        if let Err(e) = publish(&js, RELEASED.to_string()).await {
            warn!(instance = %instance, error = %e, "cannot release the sets lease; a standby takes over in a few seconds");
        }
    }
}
