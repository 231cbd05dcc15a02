//! `gpu-agent`: `serve` runs the daemon, `status` probes a running one.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use gpu_agent::config::AgentConfig;

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
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print JSON instead of one line.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Status { url, json } => std::process::exit(gpu_agent::probe::run(&url, json)),
    }
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = AgentConfig::load(config.as_deref()).context("loading the configuration")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        axum::serve(listener, gpu_agent::server::router())
            .await
            .context("serving HTTP")
    })
}
