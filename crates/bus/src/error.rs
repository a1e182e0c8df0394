/// Failures of the bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid camera name {name:?}: use letters, digits, '-' and '_' (at most 64)")]
    CameraName { name: String },

    /// The URL and the reason with any password hidden (the client's error can echo the URL).
    #[error("failed to connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },

    /// The server answered but will not have us (credentials, permissions or TLS): retrying
    /// cannot help, so the service stops with this line.
    #[error("NATS at {url} refused the connection: {reason}{hint}")]
    Refused { url: String, reason: String, hint: &'static str },

    #[error("failed to set up stream {stream}: {reason}")]
    Stream { stream: String, reason: String },

    #[error("failed to decode {what}: {source}")]
    Decode { what: &'static str, source: prost::DecodeError },

    #[error("nats: {0}")]
    Nats(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
