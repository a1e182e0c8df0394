//! `pump-infer`: the inference service. See `pump-infer --help`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pump_bus::args::shutdown_on_signal;
use pump_bus::connect::connect;
use pump_infer::{InferStats, Predictor, Service};
use pump_pose::PoseEngine;
use tokio_util::sync::CancellationToken;

mod args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<args::Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    let (config, engine) = args.configs();
    if let Err(e) = config.validate() {
        eprintln!("pump-infer: {e}");
        return ExitCode::from(64);
    }
    let workers = args.workers.max(1);
    let result = async {
        // Loading is seconds of blocking work: off the runtime, before connecting.
        let predictors = tokio::task::spawn_blocking(move || {
            (0..workers)
                .map(|_| Ok(Box::new(PoseEngine::load(&engine)?) as Box<dyn Predictor>))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await?
        .context("cannot start the pose engine")?;
        let client = connect(&config.bus).await?;
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(shutdown_on_signal(shutdown.clone()));
        let service = Service { config, client, predictors, stats: Arc::new(InferStats::default()) };
        let result = pump_infer::run(service, shutdown).await;
        signals.abort();
        Ok::<_, anyhow::Error>(result?)
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pump-infer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
