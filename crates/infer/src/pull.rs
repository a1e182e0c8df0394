//! `--intake pull`: frames asked for by a replica only when it has room for them, from one
//! consumer on the frames stream that every replica of the group shares.
//!
//! Why: the queue group hands each replica an equal share of a camera's frames whatever its
//! speed, so a 12/s replica beside a 4/s one infers the 7.5 a second it is given and the slow
//! one drops half of its own: the pair gives 12 poses a second, not 15. Pulled, a frame goes to
//! whichever replica asks first, and a replica asks only for as many frames as it has engines
//! free; a frame no replica is free for waits in the stream, where the camera's next frame
//! replaces it (the stream keeps the newest per camera), so the newest frame still wins and
//! nothing queues. The shared consumer acknowledges nothing: a frame is handed out once, and one
//! lost with its replica is lost as a frame on the wire is.
//!
//! What a replica cannot see here: a frame the stream replaced before anyone asked for it is
//! dropped by no replica, so the replicas' `replaced` counts are the frames that reached them
//! and were replaced in their slots; the camera's frame rate beside its pose rate says the rest.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use pump_bus::streams::FRAMES_STREAM;
use pump_bus::subject::FRAMES_ALL;
use tracing::{info, warn};

use crate::slot::FrameSlots;

/// How long one request for frames waits at the server for them.
const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// How long past its expiry a request's end is waited for before it is taken as lost.
const EXPIRY_MARGIN: Duration = Duration::from_millis(500);

/// After a failed request (no leader for the consumer, the stream made again after a restart),
/// the next one goes this much later.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Bound on the requests that set up or find the consumer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct PullIntake {
    js: jetstream::Context,
    /// The group's consumer, named as the queue group is.
    name: String,
    /// Frames this replica takes at once: its engines times the batch of each.
    capacity: usize,
    consumer: Option<consumer::PullConsumer>,
    /// The request open at the server, yielding frames as they come.
    batch: Option<consumer::pull::Batch>,
    /// The last request failed: the consumer is looked up again after `RETRY_AFTER`.
    failed: bool,
}

impl PullIntake {
    pub(crate) fn new(js: jetstream::Context, name: String, capacity: usize) -> Self {
        Self { js, name, capacity: capacity.max(1), consumer: None, batch: None, failed: false }
    }

    /// The next frame message. Cancel-safe (it sits in a `select!` beside shutdown): whatever
    /// is open stays in `self`, and a frame is returned in the same poll that received it.
    pub(crate) async fn next(&mut self, slots: &FrameSlots) -> async_nats::Message {
        loop {
            if let Some(batch) = self.batch.as_mut() {
                // The server ends a request at its expiry; one it forgot (a restart, a lost
                // leader) the client would wait 5 s more for.
                match tokio::time::timeout(PULL_EXPIRES + EXPIRY_MARGIN, batch.next()).await {
                    Ok(Some(Ok(m))) => return m.message,
                    Ok(Some(Err(e))) => {
                        self.batch = None;
                        self.fail(&e);
                    }
                    Ok(None) | Err(_) => self.batch = None,
                }
                continue;
            }
            let room = slots.room(self.capacity);
            if room == 0 {
                slots.room_freed().await;
                continue;
            }
            if self.failed {
                tokio::time::sleep(RETRY_AFTER).await;
                self.consumer = None;
            }
            let consumer = match self.consumer.clone() {
                Some(c) => c,
                None => match tokio::time::timeout(REQUEST_TIMEOUT, shared_consumer(&self.js, &self.name)).await {
                    Ok(Ok(c)) => {
                        if self.failed {
                            info!(consumer = %self.name, "pulling frames again");
                        }
                        self.consumer = Some(c.clone());
                        c
                    }
                    Ok(Err(e)) => {
                        self.fail(&e);
                        continue;
                    }
                    Err(_) => {
                        self.fail(&"no answer");
                        continue;
                    }
                },
            };
            let request = consumer.batch().max_messages(room).expires(PULL_EXPIRES).messages();
            match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
                Ok(Ok(batch)) => {
                    self.failed = false;
                    self.batch = Some(batch);
                }
                Ok(Err(e)) => self.fail(&e),
                Err(_) => self.fail(&"no answer"),
            }
        }
    }

    fn fail(&mut self, why: &dyn std::fmt::Display) {
        if !self.failed {
            warn!(error = %why, consumer = %self.name, "cannot pull frames; trying again");
        }
        self.failed = true;
    }
}

/// The group's consumer of every camera's frames, made by whichever replica comes first: it
/// starts at each camera's kept frame and acknowledges nothing.
async fn shared_consumer(js: &jetstream::Context, name: &str) -> Result<consumer::PullConsumer, async_nats::Error> {
    let stream = js.get_stream(FRAMES_STREAM).await?;
    let config = consumer::pull::Config {
        durable_name: Some(name.to_string()),
        filter_subject: FRAMES_ALL.into(),
        deliver_policy: consumer::DeliverPolicy::LastPerSubject,
        ack_policy: consumer::AckPolicy::None,
        ..Default::default()
    };
    Ok(stream.get_or_create_consumer(name, config).await?)
}
