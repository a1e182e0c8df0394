//! Failures that stop the sets service (a bad pose never does: it is counted and skipped).

/// Why pump-sets stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The streams could not be set up.
    #[error(transparent)]
    Setup(#[from] pump_bus::Error),
    /// A stream, consumer or message the service needs could not be set up, read or written.
    #[error("{what}: {reason}")]
    Bus { what: &'static str, reason: String },
    /// The poses consumer went away under the service (deleted, or the stream lost).
    #[error("{0}")]
    Lost(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names what was being done when the bus failed.
pub trait Context<T> {
    fn context(self, what: &'static str) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &'static str) -> Result<T> {
        self.map_err(|e| Error::Bus { what, reason: e.to_string() })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &'static str) -> Result<T> {
        self.ok_or(Error::Bus { what, reason: "nothing came".into() })
    }
}
