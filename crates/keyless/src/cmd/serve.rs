//! `keyless serve`: run the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `keyless serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file.
    #[arg(long, value_name = "FILE", conflicts_with = "dev")]
    pub config: Option<PathBuf>,
    /// Development mode: no config, a built-in OIDC issuer, a demo role; loopback only.
    #[arg(long)]
    pub dev: bool,
    /// Listen address, overriding the config (e.g. 127.0.0.1:7707; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory, overriding the config.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log level filter (tracing syntax), e.g. `info` or `keyless_server=debug`.
    #[arg(long, env = "KEYLESS_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// BENCHMARKS ONLY: record no audit events, to measure what auditing costs. Refused on a
    /// non-loopback address; /readyz stays 503 so no load balancer routes real traffic here.
    #[arg(long)]
    pub unsafe_disable_audit_for_benchmark: bool,
}

/// Runs `keyless serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    // The audit writer ends a gathering wait when a worker runs out of work (see
    // `keyless_audit::writer::ParkedWorkers`).
    let parked = Arc::new(keyless_audit::writer::ParkedWorkers::default());
    let (on_park, on_unpark) = (Arc::clone(&parked), Arc::clone(&parked));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(move || on_park.park())
        .on_thread_unpark(move || on_unpark.unpark())
        .build()?;
    let opts = keyless_server::ServeOptions {
        config: args.config,
        dev: args.dev,
        listen: args.listen,
        data_dir: args.data_dir,
        unsafe_disable_audit_for_benchmark: args.unsafe_disable_audit_for_benchmark,
        parked_workers: Some(parked),
    };
    match runtime.block_on(keyless_server::serve(opts)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("keyless serve: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
