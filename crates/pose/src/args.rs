//! The engine's command-line flags, shared by every binary that runs the model (feature `clap`).

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::Args;

use crate::{DecodeConfig, EngineConfig, Provider};

/// Flags that choose and configure the pose model.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// ONNX YOLO-pose model [default: models/yolo11n-pose.onnx]
    #[arg(long, env = "PUMP_MODEL")]
    pub model: Option<PathBuf>,
    /// Path of libonnxruntime.so [default: next to the binary, then the project's .cache]
    #[arg(long, env = "PUMP_ORT_LIB")]
    pub ort_lib: Option<PathBuf>,
    /// Minimum person score.
    #[arg(long, env = "PUMP_CONF", default_value_t = 0.25, value_parser = unit_interval)]
    pub conf: f32,
    /// NMS IoU threshold.
    #[arg(long, env = "PUMP_IOU", default_value_t = 0.7, value_parser = unit_interval)]
    pub iou: f32,
    /// Long side of the model input, a multiple of 32. 640 is Ultralytics' default (parity);
    /// 480, 384 or 320 trade detail for speed (the model's time falls with the pixels): the
    /// fast mode, for more cameras per machine (docs/MEASUREMENTS.md, "Cameras per machine").
    #[arg(long, env = "PUMP_IMGSZ", default_value_t = 640, value_parser = input_size)]
    pub imgsz: usize,
    /// Inference threads per engine (0 = auto: see `--workers`).
    #[arg(long, env = "PUMP_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Execution provider: `cpu`, `cuda` or `cuda:N`.
    #[arg(long, env = "PUMP_DEVICE", default_value = "cpu", value_parser = parse_device)]
    pub device: Provider,
    /// Run on CPU (with a warning) when the requested device cannot be used.
    #[arg(long, env = "PUMP_ALLOW_CPU_FALLBACK", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub allow_cpu_fallback: bool,
    /// Idle inference threads sleep at once instead of spinning (for hosts shared with other work).
    #[arg(long, env = "PUMP_NO_SPIN", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub no_spin: bool,
}

impl EngineArgs {
    pub fn engine_config(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        EngineConfig {
            model: self.model.clone().unwrap_or(defaults.model),
            ort_lib: self.ort_lib.clone(),
            threads: self.threads,
            provider: self.device,
            allow_cpu_fallback: self.allow_cpu_fallback,
            spin: !self.no_spin,
            decode: DecodeConfig { conf: self.conf, iou: self.iou, ..DecodeConfig::default() },
            imgsz: self.imgsz,
        }
    }
}

fn parse_device(s: &str) -> Result<Provider, String> {
    match s {
        "cpu" => Ok(Provider::Cpu),
        "cuda" => Ok(Provider::Cuda { device_id: 0 }),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(|device_id| Provider::Cuda { device_id })
            .ok_or_else(|| format!("unknown device `{s}` (expected cpu, cuda or cuda:N)")),
    }
}

fn input_size(s: &str) -> Result<usize, String> {
    let v: usize = s.parse().map_err(|_| format!("`{s}` is not a whole number"))?;
    if (32..=1280).contains(&v) && v.is_multiple_of(32) {
        Ok(v)
    } else {
        Err(format!("{v} must be a multiple of 32 from 32 to 1280 (the model's stride)"))
    }
}

fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_thresholds_parse() {
        assert_eq!(parse_device("cpu"), Ok(Provider::Cpu));
        assert_eq!(parse_device("cuda:1"), Ok(Provider::Cuda { device_id: 1 }));
        assert!(parse_device("tpu").is_err());
        assert!(unit_interval("1.5").is_err());
        assert_eq!(unit_interval("0.5"), Ok(0.5));
        assert_eq!(input_size("320"), Ok(320));
        assert!(input_size("300").is_err());
        assert!(input_size("0").is_err());
        assert!(input_size("2048").is_err());
    }
}

/// How many engines, with how many threads each: what `pump detect` and `pump-infer` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    pub workers: usize,
    /// Intra-op threads per engine (0 = ONNX Runtime's choice, one per core).
    pub threads: usize,
}

impl WorkerPlan {
    /// Resolves `--workers`/`--threads` (0 = auto) for `cores` cores. Auto is one single-threaded
    /// engine per core — engines that never wait for each other, measured fastest on CPU (and no
    /// idle intra-op thread spinning) — except for a few frames (`few_frames`: a handful of
    /// images), where one engine on every core finishes sooner.
    pub fn resolve(workers: usize, threads: usize, cores: usize, few_frames: bool) -> Self {
        let cores = cores.max(1);
        match (workers, threads) {
            (0, t) if few_frames => Self { workers: 1, threads: t },
            (0, 0) => Self { workers: cores, threads: 1 },
            (0, t) => Self { workers: (cores / t).max(1), threads: t },
            (w, 0) => Self { workers: w, threads: (cores / w).max(1) },
            (w, t) => Self { workers: w, threads: t },
        }
    }
}

#[cfg(test)]
mod plan_tests {
    use super::WorkerPlan;

    #[test]
    fn plans_parallel_engines_for_videos_and_one_wide_engine_for_images() {
        assert_eq!(WorkerPlan::resolve(0, 0, 2, false), WorkerPlan { workers: 2, threads: 1 });
        assert_eq!(WorkerPlan::resolve(0, 0, 2, true), WorkerPlan { workers: 1, threads: 0 });
        assert_eq!(WorkerPlan::resolve(0, 1, 2, true), WorkerPlan { workers: 1, threads: 1 });
        assert_eq!(WorkerPlan::resolve(0, 2, 2, false), WorkerPlan { workers: 1, threads: 2 });
        assert_eq!(WorkerPlan::resolve(0, 1, 4, false), WorkerPlan { workers: 4, threads: 1 });
        assert_eq!(WorkerPlan::resolve(3, 0, 2, false), WorkerPlan { workers: 3, threads: 1 });
        assert_eq!(WorkerPlan::resolve(1, 0, 2, false), WorkerPlan { workers: 1, threads: 2 });
    }
}
