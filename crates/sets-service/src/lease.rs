//! One pump-sets per bus. The service owns a durable consumer that it recreates at each start (at
//! its checkpoint), so a second instance would delete the first one's consumer and the first
//! would stop counting while everything looked healthy. Instead, the running instance renews a
//! lease every second (a message on `pump.sets-lease` in the checkpoint stream); a starting
//! instance that sees the lease renewed within a few seconds refuses to start, with one line
//! saying so. A clean stop releases the lease, so a restart is immediate; after a crash the next
//! instance waits until the lease has gone unrenewed for [`WATCH`].
//!
//! No clocks are compared: an instance watches whether the lease's stream sequence moves.

use std::time::Duration;

use crate::error::{Context, Error, Result};
use async_nats::jetstream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

/// The lease's subject, kept (last message only) by the checkpoint stream.
pub const LEASE_SUBJECT: &str = pump_bus::subject::SETS_LEASE;
/// How often the holder renews the lease.
const RENEW: Duration = Duration::from_secs(1);
/// How long a starting instance watches for renewals: three missed renewals free the lease.
const WATCH: Duration = Duration::from_secs(3);
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

async fn last_lease(store: &jetstream::stream::Stream) -> Option<(u64, String)> {
    let m = store.get_last_raw_message_by_subject(LEASE_SUBJECT).await.ok()?;
    Some((m.sequence, String::from_utf8_lossy(&m.payload).into_owned()))
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
    /// Takes the lease, or fails with one line when another instance holds it.
    pub async fn acquire(js: &jetstream::Context, store: &jetstream::stream::Stream, instance: &str) -> Result<Self> {
        if let Some((seq, _)) = last_lease(store).await.filter(|(_, h)| h != RELEASED) {
            // Held, or left by an instance that crashed: renewals tell which.
            tokio::time::sleep(WATCH).await;
            if let Some((_, holder)) = last_lease(store).await.filter(|(s, h)| *s != seq && h != RELEASED) {
                return Err(Error::LeaseHeld { holder: holder.trim_start_matches("held ").to_string() });
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
        Ok(Self { js: js.clone(), instance: instance.to_string(), renewing: renewing.drop_guard(), task })
    }

    /// Stops renewing and frees the lease for the next instance at once.
    pub async fn release(self) {
        let Self { js, instance, renewing, task } = self;
        drop(renewing);
        let _ = task.await;
        if let Err(e) = publish(&js, RELEASED.to_string()).await {
            warn!(instance = %instance, error = %e, "cannot release the sets lease; the next start waits a few seconds");
        }
    }
}
