//! Connecting to NATS: retry at start-up (a service may start before the server), log every
//! connection state change, and keep subscription buffers small where a queue would hurt.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, ServerAddr};

use crate::auth::{BusAuth, Credentials};
use crate::error::{Error, Result};

/// How a service connects.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// One NATS URL, or a cluster's, comma-separated: the client connects to any of them (in a
    /// random order, so a cluster's clients spread over its nodes) and fails over to the others,
    /// and to those the servers announce.
    pub url: String,
    /// Client name shown by the server (`nats server report connections`).
    pub name: String,
    /// Messages a subscription buffers before the server counts us as a slow consumer. The
    /// client's default (65 536) is a queue of stale frames; frame consumers set a small one.
    pub subscription_capacity: usize,
    /// Credentials and TLS.
    pub auth: BusAuth,
}

impl BusConfig {
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self { url: url.into(), name: name.into(), subscription_capacity: 1024, auth: BusAuth::default() }
    }
}

/// The servers of `cfg.url`, a comma-separated list; a part that is not a URL is one clear line.
fn servers(cfg: &BusConfig) -> Result<Vec<ServerAddr>> {
    let parts: Vec<&str> = cfg.url.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(Error::Connect { url: String::new(), reason: "no NATS URL given".into() });
    }
    parts
        .iter()
        .map(|p| {
            p.parse::<ServerAddr>().map_err(|e| Error::Connect {
                url: crate::redact::url(p),
                reason: format!("not a NATS URL ({})", crate::redact::secrets_in(&e.to_string(), p)),
            })
        })
        .collect()
}

/// Connect options carrying the credentials and TLS settings of `cfg`.
async fn secured(cfg: &BusConfig) -> Result<ConnectOptions> {
    let a = &cfg.auth;
    let mut o = match &a.credentials {
        Credentials::None => ConnectOptions::new(),
        Credentials::CredsFile(path) => {
            ConnectOptions::with_credentials_file(path).await.map_err(|e| Error::Refused {
                url: crate::redact::url(&cfg.url),
                reason: format!("credentials file {}: {e}", path.display()),
                hint: "",
            })?
        }
        Credentials::NKey(seed) => ConnectOptions::new().nkey(seed.clone()),
        Credentials::UserPassword(u, p) => ConnectOptions::new().user_and_password(u.clone(), p.clone()),
        Credentials::Token(t) => ConnectOptions::new().token(t.clone()),
    };
    if let Some(ca) = &a.ca {
        o = o.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &a.client_cert {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o.require_tls(a.tls())
        .name(&cfg.name)
        .custom_inbox_prefix(inbox_prefix(cfg))
        .connection_timeout(Duration::from_secs(2)))
}

/// Where the replies to this connection's requests come: `_INBOX_<user>` (the NATS user, else the
/// client's name), so a server can let each user read its own replies only — with one `_INBOX`
/// for all, any service could read another's JetStream answers (`deploy/nats-secure.conf`).
pub fn inbox_prefix(cfg: &BusConfig) -> String {
    let who = match &cfg.auth.credentials {
        Credentials::UserPassword(user, _) => user.as_str(),
        _ => cfg.name.as_str(),
    };
    let token: String =
        who.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("_INBOX_{token}")
}

/// Whether a failed connection is the server refusing us (retrying cannot help) and what to check.
fn refusal(e: &async_nats::ConnectError) -> Option<&'static str> {
    const TLS: &str = " (check PUMP_NATS_CA, PUMP_NATS_CERT/KEY and whether the server speaks TLS)";
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => Some(
            " (check the service's NATS credentials: PUMP_NATS_USER/PASSWORD_FILE, TOKEN_FILE, NKEY_FILE or CREDS)",
        ),
        ConnectErrorKind::Tls => Some(TLS),
        // A certificate the client does not trust, or one the server does not: rustls says so as
        // invalid data in the handshake (a server that is away is a refused or reset connection).
        ConnectErrorKind::Io => {
            let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
            io.is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData).then_some(TLS)
        }
        _ => None,
    }
}

/// Resolves once the server has refused this configuration for good (bad credentials, TLS that
/// cannot work); never while the server is merely away, nor once it has accepted us. The client
/// of [`connect`] retries for ever in the background, and an authorization failure there would
/// leave a service waiting silently: a service races its work against this.
pub async fn refused(cfg: &BusConfig) -> Error {
    let servers = match servers(cfg) {
        Ok(s) => s,
        Err(e) => return e,
    };
    loop {
        let attempt = match secured(cfg).await {
            Ok(o) => o.connect(servers.clone()).await,
            Err(e) => return e,
        };
        match attempt {
            Ok(client) => {
                drop(client);
                return std::future::pending().await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "nats connection attempt failed");
                if let Some(hint) = refusal(&e) {
                    return Error::Refused {
                        url: crate::redact::urls(&cfg.url),
                        reason: crate::redact::secrets_of_urls_in(&e.to_string(), &cfg.url),
                        hint,
                    };
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Connects, retrying for ever in the background until the server answers; the client is usable
/// at once (requests wait for the connection). See [`refused`] for a server that will not have us.
pub async fn connect(cfg: &BusConfig) -> Result<Client> {
    let name = cfg.name.clone();
    let slow = Arc::new(SlowConsumerLog::default());
    let servers = servers(cfg)?;
    secured(cfg)
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .subscription_capacity(cfg.subscription_capacity.max(1))
        .event_callback(move |event| {
            let (name, slow) = (name.clone(), slow.clone());
            async move {
                match event {
                    Event::Connected => tracing::info!(client = %name, "nats connected"),
                    Event::Disconnected => tracing::warn!(client = %name, "nats disconnected, reconnecting"),
                    Event::SlowConsumer(sid) => {
                        if let Some(since) = slow.report() {
                            tracing::warn!(
                                client = %name, sid, events_since_last = since,
                                "nats slow consumer: messages dropped by the client (said at most every 10 s)"
                            )
                        }
                    }
                    other => tracing::debug!(client = %name, event = %other, "nats event"),
                }
            }
        })
        .connect(servers)
        .await
        .map_err(|source| Error::Connect {
            url: crate::redact::urls(&cfg.url),
            reason: crate::redact::secrets_of_urls_in(&source.to_string(), &cfg.url),
        })
}

/// How often a flood of slow-consumer events is said: a client falling behind sees one per
/// message dropped, hundreds a second.
const SLOW_CONSUMER_LOG_EVERY_NS: i64 = 10_000_000_000;

#[derive(Debug, Default)]
struct SlowConsumerLog {
    last_ns: AtomicI64,
    since: AtomicU64,
}

impl SlowConsumerLog {
    /// Counts an event; says how many there were since the last report when one is due.
    fn report(&self) -> Option<u64> {
        self.since.fetch_add(1, Ordering::Relaxed);
        let now = crate::clock::now_ns();
        let last = self.last_ns.load(Ordering::Relaxed);
        if now - last < SLOW_CONSUMER_LOG_EVERY_NS
            || self.last_ns.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return None;
        }
        Some(self.since.swap(0, Ordering::Relaxed))
    }
}

/// How long shutdown waits for the server to take what is buffered.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Flushes buffered messages on shutdown, but never waits longer than [`FLUSH_DEADLINE`]: with
/// the server gone, a plain flush would wait for it for ever.
pub async fn flush_bounded(client: &Client) {
    match tokio::time::timeout(FLUSH_DEADLINE, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "flush on shutdown failed"),
        Err(_) => tracing::warn!(deadline = ?FLUSH_DEADLINE, "nats unreachable: unsent messages dropped at shutdown"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_is_a_comma_separated_list_and_a_bad_part_is_one_line() {
        let cfg = super::BusConfig::new("nats://n1:4222, nats://n2:4222,tls://n3:4443", "t");
        let servers = super::servers(&cfg).unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[2].port(), 4443);
        let bad = super::BusConfig::new("nats://pump:s3cret@n1:4222,nats://n2:notaport", "t");
        let e = super::servers(&bad).unwrap_err().to_string();
        assert!(e.contains("nats://n2:notaport") && e.contains("not a NATS URL"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(super::servers(&super::BusConfig::new(" , ", "t")).is_err());
    }

    #[test]
    fn a_slow_consumer_flood_is_said_once_with_its_count() {
        let log = super::SlowConsumerLog::default();
        assert_eq!(log.report(), Some(1));
        for _ in 0..900 {
            assert_eq!(log.report(), None);
        }
        assert_eq!(log.since.load(std::sync::atomic::Ordering::Relaxed), 900);
    }
}
