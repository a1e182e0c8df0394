//! Command-line flags. Every flag also reads a `PUMP_*` environment variable.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use pump_pose::{DecodeConfig, EngineConfig, Provider};

#[derive(Debug, Parser)]
#[command(name = "pump", version, about = "Gym-camera pose pipeline: detect poses, count reps, close sets")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one JSON line of poses per frame of each image or video.
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter for stderr (tracing's EnvFilter syntax, e.g. `info,pump_pose=debug`).
    #[arg(long, global = true, env = "PUMP_LOG", default_value = "warn")]
    pub log: String,
}

/// Flags that choose and configure the pose model.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
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

impl ModelArgs {
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
            imgsz: defaults.imgsz,
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

fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Images or video files, processed in order.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Engines running side by side on alternate frames (0 = auto: one single-threaded engine
    /// per core for videos, one engine on every core for a few images).
    #[arg(long, env = "PUMP_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long, env = "PUMP_NO_PROGRESS", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub no_progress: bool,
}

pub fn init_tracing(log: &LogArgs) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(&log.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu"), Ok(Provider::Cpu));
        assert_eq!(parse_device("cuda:1"), Ok(Provider::Cuda { device_id: 1 }));
        assert!(parse_device("tpu").is_err());
        assert!(unit_interval("1.5").is_err());
        assert_eq!(unit_interval("0.5"), Ok(0.5));
    }
}
