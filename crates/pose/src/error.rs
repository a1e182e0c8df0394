use std::path::PathBuf;

/// Everything that can go wrong in the pose engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("onnxruntime library not found (looked in: {looked}); run `just setup` or set PUMP_ORT_LIB to libonnxruntime.so")]
    OrtLibraryMissing { looked: String },

    #[error("failed to load onnxruntime from {path}: {source}")]
    LoadOrt { path: PathBuf, source: ort::Error },

    #[error("model file not found at {path}; pass --model or set PUMP_MODEL")]
    ModelMissing { path: PathBuf },

    #[error("failed to load model {path}: {source}")]
    LoadModel { path: PathBuf, source: ort::Error },

    #[error("{path} is not a YOLO-pose model: {why}")]
    NotPoseModel { path: PathBuf, why: String },

    #[error("execution provider {provider} is unavailable: {why}; pass --allow-cpu-fallback to run on CPU instead")]
    ProviderUnavailable { provider: &'static str, why: String },

    #[error("invalid engine configuration: {0}")]
    Config(String),

    #[error("invalid image: {0}")]
    Image(String),

    #[error("inference failed: {0}")]
    Inference(#[from] ort::Error),

    #[error("unexpected model output: {0}")]
    Output(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
