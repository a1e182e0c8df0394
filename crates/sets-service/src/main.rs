//! `pump-sets`: the sets service. See `pump-sets --help`.

use std::process::ExitCode;
use std::sync::Arc;

use pump_sets_service::Service;

mod args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<args::Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => return pump_bus::args::usage_error("pump-sets", e),
    };
    let ops = match pump_bus::args::bind("pump-sets", args.http_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    pump_bus::args::serve("pump-sets", &config.bus.clone(), |client, shutdown| {
        pump_sets_service::run(Service { config, client, stats: Arc::default(), ops: Some(ops) }, shutdown)
    })
    .await
}
