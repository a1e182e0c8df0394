use std::path::PathBuf;

/// Failures of a frame source or of the capture service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },

    #[error("{path}: not a file")]
    NotAFile { path: PathBuf },

    #[error("{path}: cannot read: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },

    #[error("{path}: not an image or a video that can be decoded")]
    NotMedia { path: PathBuf },

    #[error("{path}: corrupt video, no frame could be decoded")]
    NoFrames { path: PathBuf },

    #[error("{path}: {source}")]
    OpenCv { path: PathBuf, source: opencv::Error },

    #[error("failed to open camera {uri}: {source}")]
    OpenCamera { uri: String, source: opencv::Error },

    #[error("camera {uri} is unavailable")]
    CameraUnavailable { uri: String },

    #[error("failed to read camera {uri}: {source}")]
    ReadCamera { uri: String, source: opencv::Error },

    #[error("failed to encode a frame: {0}")]
    Encode(String),

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error(transparent)]
    Bus(#[from] pump_bus::Error),

    #[error("failed to subscribe to {subject}: {source}")]
    Subscribe { subject: String, source: async_nats::SubscribeError },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
