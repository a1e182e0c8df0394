//! The ONNX Runtime side: finding the shared library, one process-wide environment, and a
//! `PoseEngine` per worker (a session needs `&mut` to run, so engines are never shared).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::decode::{DecodeConfig, Decoder, OutputLayout};
use crate::error::{Error, Result};
use crate::letterbox::{ImageView, InputTensor, Preprocessor};
use crate::types::Pose;

/// Shared library file name the loader looks for.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so";

/// Where `just setup` puts the library, relative to the workspace root.
const PROJECT_ORT_DIR: &str = ".cache/onnxruntime";

/// Which execution provider to ask ONNX Runtime for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda {
        device_id: i32,
    },
}

impl Provider {
    /// Returns ONNX Runtime's name for the provider.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda { .. } => "CUDAExecutionProvider",
        }
    }
}

/// How to build an engine. `Default` runs the shipped model on CPU with Ultralytics' thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub model: PathBuf,
    /// Explicit path of `libonnxruntime.so`; otherwise see [`find_ort_library`].
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads; 0 lets ONNX Runtime use one per core.
    pub threads: usize,
    pub provider: Provider,
    /// Run on CPU, with one warning, when the requested provider cannot load.
    pub allow_cpu_fallback: bool,
    /// Let idle inference threads spin before sleeping: lower latency on a machine of its own,
    /// wasted cores when other processes (or other engines) compete for them.
    pub spin: bool,
    pub decode: DecodeConfig,
    /// Long side of the model input.
    pub imgsz: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model: default_model_path(),
            ort_lib: None,
            threads: 0,
            provider: Provider::Cpu,
            allow_cpu_fallback: false,
            spin: true,
            decode: DecodeConfig::default(),
            imgsz: 640,
        }
    }
}

/// Workspace root as compiled in; the default home of the model and of the ORT cache.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns the model path: `PUMP_MODEL` if set, else `models/yolo11n-pose.onnx` in the current
/// directory if present, else the copy in the source workspace.
pub fn default_model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PUMP_MODEL") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("models/yolo11n-pose.onnx");
    if local.exists() {
        return local;
    }
    workspace_root().join("models/yolo11n-pose.onnx")
}

/// Finds `libonnxruntime.so`: the explicit path, then `PUMP_ORT_LIB`, `ORT_DYLIB_PATH`, next to
/// the executable (and its `../lib`), then the project cache that `just setup` fills.
pub fn find_ort_library(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    }
    for var in ["PUMP_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var) {
            candidates.push(PathBuf::from(p));
        }
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join(ORT_LIB_NAME));
        candidates.push(dir.join("../lib").join(ORT_LIB_NAME));
    }
    candidates.push(workspace_root().join(PROJECT_ORT_DIR).join(ORT_LIB_NAME));
    // An explicit choice that is wrong must not be papered over by a later candidate.
    if let Some(first) = candidates.first().filter(|_| explicit.is_some()) {
        return if first.is_file() {
            Ok(first.clone())
        } else {
            Err(Error::OrtLibraryMissing { looked: first.display().to_string() })
        };
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::OrtLibraryMissing {
        looked: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

static FALLBACK_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Loads ONNX Runtime once per process; later calls return the same environment.
fn environment(explicit: Option<&Path>) -> Result<Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let lib = find_ort_library(explicit)?;
    let env = ort::init_from(&lib)
        .map_err(|e| Error::LoadOrt { path: lib.clone(), source: ort::Error::new(e.to_string()) })?
        .with_name("pump")
        .build()
        .map_err(|source| Error::LoadOrt { path: lib.clone(), source })?;
    tracing::debug!(path = %lib.display(), "onnxruntime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env).clone())
}

/// Time spent in each step of one run, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub pre: Duration,
    pub model: Duration,
    pub post: Duration,
}

/// A loaded model with its own session and reusable buffers. One per worker thread.
#[derive(Debug)]
pub struct PoseEngine {
    session: Session,
    provider: Provider,
    layout: OutputLayout,
    decode: DecodeConfig,
    preprocessor: Preprocessor,
    decoder: Decoder,
    tensor: InputTensor,
    model_path: PathBuf,
}

impl PoseEngine {
    /// Loads the model, registers the provider (never silently falling back) and checks that the
    /// model is a YOLO-pose model.
    pub fn load(cfg: &EngineConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&cfg.decode.conf) || !(0.0..=1.0).contains(&cfg.decode.iou) {
            return Err(Error::Config(format!(
                "conf ({}) and iou ({}) must be within 0..1",
                cfg.decode.conf, cfg.decode.iou
            )));
        }
        if cfg.imgsz == 0 || !cfg.imgsz.is_multiple_of(32) {
            return Err(Error::Config(format!("imgsz {} must be a positive multiple of 32", cfg.imgsz)));
        }
        if !cfg.model.is_file() {
            return Err(Error::ModelMissing { path: cfg.model.clone() });
        }
        let env = environment(cfg.ort_lib.as_deref())?;
        let load_err = |source| Error::LoadModel { path: cfg.model.clone(), source };
        let mut builder = Session::builder(&env)
            .map_err(load_err)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(e.into()))?;
        if cfg.threads > 0 {
            builder = builder.with_intra_threads(cfg.threads).map_err(|e| load_err(e.into()))?;
        }
        if !cfg.spin {
            builder = builder.with_intra_op_spinning(false).map_err(|e| load_err(e.into()))?;
            builder = builder.with_inter_op_spinning(false).map_err(|e| load_err(e.into()))?;
        }
        let (mut builder, provider) = register_provider(builder, cfg)?;
        let session = builder.commit_from_file(&cfg.model).map_err(load_err)?;
        let layout = check_model(&session, &cfg.model)?;
        tracing::info!(provider = provider.name(), model = %cfg.model.display(), "pose engine ready");
        Ok(Self {
            session,
            provider,
            layout,
            decode: cfg.decode,
            preprocessor: Preprocessor::new(cfg.imgsz, 32),
            decoder: Decoder::default(),
            tensor: InputTensor::default(),
            model_path: cfg.model.clone(),
        })
    }

    /// Returns the provider the session really runs on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// Returns a pre-processor configured like this engine's, for a separate pipeline thread.
    pub fn preprocessor(&self) -> Preprocessor {
        Preprocessor::new(self.preprocessor.imgsz(), 32)
    }

    /// Detects the people in one image.
    pub fn detect(&mut self, image: &ImageView<'_>) -> Result<(Vec<Pose>, StageTimings)> {
        let (mut batch, t) = self.detect_batch(std::slice::from_ref(image))?;
        Ok((batch.pop().unwrap_or_default(), t))
    }

    /// Detects the people in several images with one model run.
    pub fn detect_batch(&mut self, images: &[ImageView<'_>]) -> Result<(Vec<Vec<Pose>>, StageTimings)> {
        let t0 = Instant::now();
        let mut tensor = std::mem::take(&mut self.tensor);
        let pre = self.preprocessor.run(images, &mut tensor);
        let pre_time = t0.elapsed();
        let result = pre.and_then(|()| self.run_tensor(&tensor));
        self.tensor = tensor;
        let (poses, mut t) = result?;
        t.pre = pre_time;
        Ok((poses, t))
    }

    /// Runs the model and post-processing on an input prepared elsewhere (a pipeline thread).
    pub fn run_tensor(&mut self, tensor: &InputTensor) -> Result<(Vec<Vec<Pose>>, StageTimings)> {
        let t0 = Instant::now();
        let input = TensorRef::from_array_view((tensor.shape, tensor.data.as_slice()))?;
        let outputs = self.session.run(ort::inputs![input])?;
        let t1 = Instant::now();
        let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let n = tensor.shape[0];
        if dims.len() != 3 || dims[0] as usize != n || dims[1] as usize != self.layout.channels {
            return Err(Error::Output(format!("expected ({n}, {}, A), got {dims:?}", self.layout.channels)));
        }
        let anchors = dims[2] as usize;
        let per_image = self.layout.channels * anchors;
        let poses = tensor
            .letterboxes
            .iter()
            .enumerate()
            .map(|(i, lb)| {
                let rows = &data[i * per_image..(i + 1) * per_image];
                self.decoder.decode(rows, anchors, self.layout, &self.decode, lb)
            })
            .collect();
        let t2 = Instant::now();
        Ok((poses, StageTimings { pre: Duration::ZERO, model: t1 - t0, post: t2 - t1 }))
    }
}

/// Registers the requested provider. Never falls back silently: a provider that cannot load
/// is an error unless CPU fallback was allowed, and then it is one warning.
fn register_provider(builder: Builder, cfg: &EngineConfig) -> Result<(Builder, Provider)> {
    let Provider::Cuda { device_id } = cfg.provider else {
        return Ok((builder, Provider::Cpu));
    };
    match try_cuda(builder, device_id) {
        (b, None) => Ok((b, cfg.provider)),
        (b, Some(why)) if cfg.allow_cpu_fallback => {
            // Several engines may load at once; the user needs to read this once, not per engine.
            if !FALLBACK_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(provider = "CUDAExecutionProvider", error = %why, "requested provider unavailable, running on CPU");
            }
            Ok((b, Provider::Cpu))
        }
        (_, Some(why)) => Err(Error::ProviderUnavailable { provider: "CUDAExecutionProvider", why }),
    }
}

type Builder = ort::session::builder::SessionBuilder;

/// Registers CUDA, failing loudly; returns the builder either way, with the reason on failure.
#[cfg(feature = "cuda")]
fn try_cuda(builder: Builder, device_id: i32) -> (Builder, Option<String>) {
    use ort::ep::ExecutionProvider;
    match ort::ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return (builder, Some("this onnxruntime library has no CUDA provider (install onnxruntime-gpu)".into()))
        }
        Err(e) => return (builder, Some(e.to_string())),
    }
    let ep = ort::ep::CUDA::default().with_device_id(device_id).build().error_on_failure();
    match builder.with_execution_providers([ep]) {
        Ok(b) => (b, None),
        Err(e) => {
            let why = e.to_string();
            (e.recover(), Some(why))
        }
    }
}

/// Registers CUDA, failing loudly; returns the builder either way, with the reason on failure.
#[cfg(not(feature = "cuda"))]
fn try_cuda(builder: Builder, _device_id: i32) -> (Builder, Option<String>) {
    (builder, Some("this build has no CUDA support (rebuild with `--features cuda`)".into()))
}

/// Checks the model's one input and output look like YOLO-pose: (N, 3, H, W) in, (N, 56, A) out.
fn check_model(session: &Session, path: &Path) -> Result<OutputLayout> {
    let bad = |why: String| Error::NotPoseModel { path: path.to_path_buf(), why };
    let inputs = session.inputs();
    if inputs.len() != 1 {
        return Err(bad(format!("expected one input, found {}", inputs.len())));
    }
    let in_shape = inputs[0].dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
    if in_shape.len() != 4 || in_shape[1] != 3 {
        return Err(bad(format!("expected input (N, 3, H, W), found {in_shape:?}")));
    }
    let outputs = session.outputs();
    let out_shape = outputs.first().and_then(|o| o.dtype().tensor_shape()).map(|s| s.to_vec()).unwrap_or_default();
    let layout = OutputLayout::YOLO_POSE;
    if out_shape.len() != 3 || out_shape[1] != layout.channels as i64 {
        return Err(bad(format!("expected output (N, {}, A), found {out_shape:?}", layout.channels)));
    }
    Ok(layout)
}
