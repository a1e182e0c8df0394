//! `pump-infer` flags; every one also reads a `PUMP_*` variable.

use std::time::Duration;

use clap::Parser;
use pump_bus::args::CommonArgs;
use pump_pose::args::{EngineArgs, WorkerPlan};
use pump_pose::EngineConfig;

use pump_infer::Config;

/// Frames a subscription buffers: enough to ride out a scheduling hiccup, never a backlog.
const SUBSCRIPTION_CAPACITY: usize = 16;

/// Frames of different cameras per model run on a GPU by default.
const GPU_BATCH: usize = 8;

#[derive(Debug, Parser)]
#[command(
    name = "pump-infer",
    version,
    about = "Newest frame of each camera in (pump.frames.>), poses out (pump.poses.<camera>)"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Engines (worker threads), each with its own session. 0 (auto): on CPU one single-threaded
    /// engine per core, as `pump detect` runs (with `--threads T`: cores / T engines of T
    /// threads); on a GPU one engine.
    #[arg(long, env = "PUMP_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Up to this many waiting frames of different cameras per model run. 0 (auto): 1 on CPU
    /// (batches cost throughput and double frame age there), 8 on a GPU.
    #[arg(long, env = "PUMP_BATCH", default_value_t = 0)]
    pub batch: usize,
    /// Frames older than this when inference would take them are dropped.
    #[arg(long, env = "PUMP_MAX_FRAME_AGE_MS", default_value_t = 500)]
    pub max_frame_age_ms: u64,
    /// NATS queue group shared by replicas (each frame goes to one of them).
    #[arg(long, env = "PUMP_QUEUE_GROUP", default_value = pump_infer::config::DEFAULT_QUEUE_GROUP)]
    pub queue_group: String,
    /// How replicas share the frames: `queue` (each frame to one replica at random) or `pull`
    /// (a replica asks for frames when it has engines free: replicas of unequal speed add up).
    #[arg(long, env = "PUMP_INTAKE", default_value = "queue")]
    pub intake: pump_infer::config::Intake,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9102")]
    pub http_addr: std::net::SocketAddr,
    /// Each model run takes at least this many ms: this machine made as slow as a busy one (tests
    /// of low pose rates, capacity planning). 0: as fast as it goes.
    #[arg(long, env = "PUMP_MIN_INFERENCE_MS", default_value_t = 0)]
    pub min_inference_ms: u64,
    /// Frames waiting and no model run finished for this many seconds: /healthz answers 503
    /// ("stuck"), and a liveness probe restarts the service.
    #[arg(long, env = "PUMP_STUCK_AFTER_S", default_value_t = 60)]
    pub stuck_after_s: u64,
    /// Seconds between statistics lines in the log.
    #[arg(long, env = "PUMP_STATS_INTERVAL_S", default_value_t = 10)]
    pub stats_interval_s: u64,
}

impl Args {
    /// Splits the flags into the service's and the engines' configuration, and how many engines.
    pub fn configs(&self) -> Result<(Config, EngineConfig, WorkerPlan), String> {
        let mut bus = self.common.bus("pump-infer")?;
        bus.subscription_capacity = SUBSCRIPTION_CAPACITY;
        let mut config = Config::new(bus);
        config.limits = self.common.stream_limits();
        let gpu = !matches!(self.engine.device, pump_pose::Provider::Cpu);
        config.batch = match self.batch {
            0 if gpu => GPU_BATCH,
            0 => 1,
            b => b,
        };
        config.max_frame_age = Duration::from_millis(self.max_frame_age_ms);
        config.queue_group = self.queue_group.clone();
        config.intake = self.intake;
        config.stats_interval = Duration::from_secs(self.stats_interval_s.max(1));
        config.min_inference = Duration::from_millis(self.min_inference_ms);
        config.stuck_after = Duration::from_secs(self.stuck_after_s.max(1));
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let plan = match (self.workers, gpu) {
            // One session keeps a GPU busy when it gets batches; more would only share it.
            (0, true) => WorkerPlan { workers: 1, threads: self.engine.threads },
            _ => WorkerPlan::resolve(self.workers, self.engine.threads, cores, false),
        };
        Ok((config, EngineConfig { threads: plan.threads, ..self.engine.engine_config() }, plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> (usize, WorkerPlan) {
        let args = Args::try_parse_from(std::iter::once("pump-infer").chain(args.iter().copied())).unwrap();
        let (config, _, plan) = args.configs().unwrap();
        (config.batch, plan)
    }

    #[test]
    fn auto_is_engines_per_core_on_cpu_and_one_batching_engine_on_a_gpu() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert_eq!(plan(&[]), (1, WorkerPlan { workers: cores, threads: 1 }));
        assert_eq!(plan(&["--device", "cuda"]), (GPU_BATCH, WorkerPlan { workers: 1, threads: 0 }));
        assert_eq!(plan(&["--device", "cuda", "--batch", "2", "--workers", "2"]).0, 2);
        assert_eq!(plan(&["--workers", "1", "--batch", "4"]).0, 4);
    }
}
