use std::path::PathBuf;

/// Failures of a frame source.
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
