//! `pump-capture`: the capture service. See `pump-capture --help`.

use std::process::ExitCode;

use pump_capture::Service;

mod args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<args::Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    // FFmpeg's own messages echo camera URLs, passwords included; pump reports camera failures
    // itself, with the password hidden. Set OPENCV_FFMPEG_LOGLEVEL (e.g. 16) to see FFmpeg's.
    if std::env::var_os("OPENCV_FFMPEG_LOGLEVEL").is_none() {
        std::env::set_var("OPENCV_FFMPEG_LOGLEVEL", "-8");
    }
    let (config, tls) = match args.config() {
        Ok(c) => c,
        Err(e) => return pump_bus::args::usage_error("pump-capture", e),
    };
    tls.apply();
    let ops = match pump_bus::args::bind("pump-capture", args.http_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    pump_bus::args::serve("pump-capture", &config.bus.clone(), |client, shutdown| {
        let service = Service { ops: Some(ops), ..Service::from_config(config, client) };
        pump_capture::run(service, shutdown)
    })
    .await
}
