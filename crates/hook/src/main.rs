//! `pump-hook`: the hook service (the same as `pump hook`). See `pump-hook --help`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "pump-hook",
    version,
    about = "Delivers every closed set: logged in the PUMP workout logger (--pump), or POSTed as JSON (--url)"
)]
struct Cli {
    #[command(flatten)]
    hook: pump_hook::HookArgs,
    /// Log filter for stderr (tracing's EnvFilter syntax): the bus's own warnings (a permission
    /// the server refuses, a lost connection).
    #[arg(long, env = "PUMP_LOG", default_value = "info")]
    log: String,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9105")]
    http_addr: std::net::SocketAddr,
}

fn main() -> ExitCode {
    let cli = match pump_bus::args::parse::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match pump_hook::run(cli.hook, Some(cli.http_addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pump-hook: {e:#}");
            ExitCode::FAILURE
        }
    }
}
