//! `pump-infer`: the inference service. See `pump-infer --help`.

use std::process::ExitCode;
use std::sync::Arc;

use pump_infer::{InferStats, Predictor, Service};
use pump_pose::PoseEngine;

mod args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<args::Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    let (config, engine, plan) = match args.configs() {
        Ok(c) => c,
        Err(e) => return pump_bus::args::usage_error("pump-infer", e),
    };
    if let Err(e) = config.validate() {
        return pump_bus::args::usage_error("pump-infer", e);
    }
    let workers = plan.workers.max(1);
    let gpu = !matches!(args.engine.device, pump_pose::Provider::Cpu);
    let why = match (args.workers, gpu) {
        (0, false) => {
            "one single-threaded engine per core (--workers 0, the default): engines that never wait for each other"
        }
        (0, true) => "one engine on the GPU, fed batches (--workers 0, the default)",
        _ => "as --workers says",
    };
    tracing::info!(engines = workers, threads_each = plan.threads, batch = config.batch, imgsz = engine.imgsz, "{why}");
    // Loading is seconds of blocking work: off the runtime, before connecting.
    let loaded = tokio::task::spawn_blocking(move || {
        (0..workers)
            .map(|_| Ok(Box::new(PoseEngine::load(&engine)?) as Box<dyn Predictor>))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await;
    let predictors = match loaded {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("pump-infer: cannot start the pose engine: {e:#}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("pump-infer: the pose engine panicked while loading: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ops = match pump_bus::args::bind("pump-infer", args.http_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    pump_bus::args::serve("pump-infer", &config.bus.clone(), |client, shutdown| {
        let stats = Arc::new(InferStats::default());
        pump_infer::run(Service { config, client, predictors, stats, ops: Some(ops) }, shutdown)
    })
    .await
}
