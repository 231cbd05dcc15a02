//! `gpu-agent`: `serve` runs the daemon, `status` probes a running one, `generate` runs
//! one generation on a local model directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use gpu_agent::config::{AgentConfig, LogFormat};
use gpu_agent::local_generate::LocalRequest;
use runtime::model::{Precision, Target};

/// `--version` also names the compiled features (`gpu-agent 0.1.0 (features: cuda)` or
/// `(features: none)`), so an operator or a test can ask a binary whether it runs candle
/// models on GPUs (docs/operations.md).
const VERSION: &str = if cfg!(feature = "cuda") {
    concat!(env!("CARGO_PKG_VERSION"), " (features: cuda)")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " (features: none)")
};

#[derive(Parser)]
#[command(name = "gpu-agent", version = VERSION, about = "Per-host GPU inference agent")]
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
    /// Generate once from a local Hugging Face model directory (no server).
    Generate {
        /// The model directory (config.json, model.safetensors, tokenizer files).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        /// New tokens at most.
        #[arg(long, default_value_t = 24)]
        max_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// 0 = no top-k cut.
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        /// Seeds sampling; absent, one is drawn (and printed with --json).
        #[arg(long)]
        seed: Option<u64>,
        /// A stop sequence (repeatable); the output ends before it.
        #[arg(long = "stop")]
        stop: Vec<String>,
        /// Print one JSON line: text, tokens, promptTokens, finishReason, seed.
        #[arg(long)]
        json: bool,
        /// Where to run: cpu, or cuda:<ordinal> (a build with the `cuda` feature).
        #[arg(long, default_value = "cpu", value_parser = gpu_agent::local_generate::parse_target)]
        device: Target,
        /// float32, float16 or bfloat16; default: float32 on the CPU, the GPU's best on CUDA.
        #[arg(long)]
        precision: Option<Precision>,
    },
    /// Download a model into the running agent's store (docs/models.md).
    Pull {
        /// The modelId (a Hub repo id, or one of the config's [models]).
        model: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the models in the running agent's store.
    Models {
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Remove a model from the running agent's store (refused while a deployment uses it).
    Evict {
        model: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// The running agent the store commands talk to.
#[derive(clap::Args)]
struct RemoteArgs {
    #[arg(long, default_value = gpu_agent::probe::DEFAULT_URL)]
    url: String,
    /// Sent as x-api-key.
    #[arg(long, env = "GPU_AGENT_PROBE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl RemoteArgs {
    fn remote(self) -> gpu_agent::store_cli::Remote {
        gpu_agent::store_cli::Remote {
            url: self.url,
            api_key: self.api_key,
        }
    }
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists: candle's CPU kernels read their thread count from the
    // environment on every matmul (see runtime::model::pin_cpu_threads).
    runtime::model::pin_cpu_threads();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Status {
            url,
            json,
            api_key,
            timeout,
        } => std::process::exit(status(&url, json, api_key, timeout)),
        Command::Generate {
            model,
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            stop,
            json,
            device,
            precision,
        } => generate(
            LocalRequest {
                model,
                prompt,
                max_tokens,
                temperature,
                top_k,
                top_p,
                seed,
                stop,
                target: device,
                precision,
            },
            json,
        ),
        Command::Pull { model, remote } => gpu_agent::store_cli::pull(&remote.remote(), &model),
        Command::Models { json, remote } => gpu_agent::store_cli::models(&remote.remote(), json),
        Command::Evict { model, remote } => gpu_agent::store_cli::evict(&remote.remote(), &model),
    }
}

fn generate(request: LocalRequest, json: bool) -> anyhow::Result<()> {
    let result = gpu_agent::local_generate::generate(request)?;
    if json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{}", result.text);
    }
    Ok(())
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
        // One NVML inventory for admission, /v1/gpus and the backend's dtype choice.
        let inventory = Arc::new(gpu_agent::gpu::GpuInventory::open(
            config.gpu.nvml_library.clone(),
        ));
        let backend = Arc::new(gpu_agent::runtime_backend::RuntimeBackend::new(
            &config,
            Arc::clone(&inventory),
        ));
        let state = gpu_agent::app_state::AppState::open(config, backend, inventory)?;
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
