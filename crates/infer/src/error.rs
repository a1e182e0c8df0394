/// Failures that stop the inference service (bad frames never do: they are counted).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] pump_bus::Error),

    #[error("failed to subscribe to {subject}: {source}")]
    Subscribe { subject: String, source: async_nats::SubscribeError },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("a worker thread did not stop: {0}")]
    Worker(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
