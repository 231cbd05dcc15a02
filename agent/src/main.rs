//! `gpu-agent`: `serve` runs the daemon, `status` probes a running one.
//!
//! A `generate` subcommand (one-shot local generation through the runtime, no server) is
//! planned by the runtime work; it belongs in [`Command`] beside these two, as a thin call
//! into the runtime crate.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use gpu_agent::config::{AgentConfig, LogFormat};

#[derive(Parser)]
#[command(name = "gpu-agent", version, about = "Per-host GPU inference agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Serve {
        /// TOML config; every key can also be set by a GPU_AGENT_* variable.
        #[arg(long, env = "GPU_AGENT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Probe a running agent: exit 0 ready, 1 up but not ready, 2 unreachable.
    Status {
        #[arg(long, default_value = gpu_agent::probe::DEFAULT_URL)]
        url: String,
        /// Print JSON instead of one line.
        #[arg(long)]
        json: bool,
        /// Sent as x-api-key to /v1/gpus for the GPU summary (readiness needs no key).
        #[arg(long, env = "GPU_AGENT_PROBE_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Seconds to wait for each answer before calling the agent unreachable.
        #[arg(long, default_value_t = gpu_agent::probe::DEFAULT_TIMEOUT.as_secs())]
        timeout: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Status {
            url,
            json,
            api_key,
            timeout,
        } => std::process::exit(status(&url, json, api_key, timeout)),
    }
}

/// Prints the probe's line (or JSON) and returns its exit code.
fn status(url: &str, json: bool, api_key: Option<String>, timeout_s: u64) -> i32 {
    let options = gpu_agent::probe::ProbeOptions {
        timeout: std::time::Duration::from_secs(timeout_s.max(1)),
        api_key,
    };
    let outcome = gpu_agent::probe::probe_with(url, &options);
    if json {
        println!("{}", outcome.json());
    } else {
        println!("{}", outcome.line());
    }
    outcome.exit_code()
}

fn init_logging(format: LogFormat) {
    let filter = std::env::var("GPU_AGENT_LOG")
        .ok()
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Colour codes only on a terminal: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = AgentConfig::load(config_path.as_deref()).context("loading the configuration")?;
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        tracing::info!(listen = %config.listen, state_dir = %config.state_dir.display(), "gpu-agent starting");
        let backend = gpu_agent::serving::runtime_backend(&config);
        let state = gpu_agent::server::AppState::open(config, backend)?;
        gpu_agent::server::run(state, listener, termination()).await?;
        tracing::info!("gpu-agent stopped");
        Ok(())
    })
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
