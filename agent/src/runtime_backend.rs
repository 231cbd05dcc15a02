//! How the agent loads a deployment onto the runtime's engine (continuous batcher over
//! candle models, or per-call batching over CTranslate2): conversion, replica placement,
//! dtype choice. It returns a `serving::ServingHandle`; it holds no tensors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::batcher::{
    Engine, EngineConfig, LoadedReplica, ReplicaLoader, ReplicaModel, StartStep,
};
use runtime::checkpoint::Checkpoint;
use runtime::ct2::{self, ComputeType, Ct2Device, Quantization as Ct2Quantization};
use runtime::model::{Architecture, Model, Target, WeightFormat};
use runtime::tokenizer::Tokenizer;

use crate::chat_template::ChatTemplate;
use crate::config::{AgentConfig, BatcherConfig};
use crate::deployment::spec::{BackendKind, DeploymentSpec};
use crate::gpu::{ComputeCapability, ExecutionDevice, GpuInventory, Placement, ReplicaDevice};
use crate::serving::{LoadFailure, LoadProgress, LoadStep, ServingHandle, ServingStatus};

/// Builds engines for deployments.
pub struct RuntimeBackend {
    state_dir: PathBuf,
    batcher: BatcherConfig,
    /// For the compute capability of the GPU a replica lands on (dtype choice).
    inventory: Arc<GpuInventory>,
}

impl RuntimeBackend {
    pub fn new(config: &AgentConfig, inventory: Arc<GpuInventory>) -> Self {
        RuntimeBackend {
            state_dir: config.state_dir.clone(),
            batcher: config.batcher.clone(),
            inventory,
        }
    }

    fn capability(&self, gpu: u32) -> Option<ComputeCapability> {
        self.inventory
            .state()
            .gpus()
            .iter()
            .find(|g| g.index == gpu)
            .map(|g| g.compute_capability)
    }

    /// Converts (or reuses the cached conversion) and returns the CTranslate2 status parts.
    fn convert(
        &self,
        dir: &Checkpoint,
        spec: &DeploymentSpec,
    ) -> Result<(ct2::CachedConversion, ComputeType), LoadFailure> {
        let requested = spec.quantization.ct2_requested();
        // Converted with the requested quantization (what CTranslate2's own converter
        // does); the loader turns its float16 tensors into the effective float type.
        let quantization = match requested {
            ComputeType::Float32 => Ct2Quantization::Float32,
            _ => Ct2Quantization::Int8Float16,
        };
        let cache = ct2::ConversionCache::new(&self.state_dir);
        let converted = if spec.reuse_cached_artifacts {
            cache.get_or_convert(dir, quantization)
        } else {
            cache.rebuild(dir, quantization)
        };
        if let Ok(ct2::CachedConversion {
            rebuilt_because: Some(reason),
            key,
            ..
        }) = &converted
        {
            tracing::warn!(key = %key, reason = %reason, "cached CTranslate2 conversion was invalid; converted again");
        }
        converted
            .map(|c| (c, requested))
            .map_err(|e| LoadFailure::new("CONVERSION_FAILED", e.to_string()))
    }
}

impl RuntimeBackend {
    /// Blocking: converts if needed, loads `placement.initial(minReplicas)` replicas,
    /// runs a warm-up generation on each, and returns once all of them serve. The lifecycle
    /// calls it from `spawn_blocking`.
    pub fn load(
        &self,
        dir: Arc<Checkpoint>,
        spec: &DeploymentSpec,
        placement: &Placement,
        progress: &dyn LoadProgress,
    ) -> Result<Arc<ServingHandle>, LoadFailure> {
        crate::validation::check_defaults_fit(
            "hyperParameters.maxTokens",
            spec.generation.max_tokens,
            dir.limits(),
        )
        .map_err(|v| LoadFailure::new(v.code, v.message))?;
        let tokenizer =
            Tokenizer::load(&dir).map_err(|e| LoadFailure::model_load(e.to_string()))?;
        let first_device = placement.initial(1).into_iter().next();
        let first_capability = first_device
            .and_then(|d| d.gpu())
            .and_then(|gpu| self.capability(gpu));
        let architecture = dir.architecture();

        let (kind, status) = match spec.backend {
            BackendKind::Candle => {
                let target = candle_target(first_device, first_capability);
                let format = spec.quantization.candle_weights();
                let status = ServingStatus {
                    backend: "candle".into(),
                    compute_type: format.compute_type(target.precision(architecture)).into(),
                    ..ServingStatus::default()
                };
                (ModelKind::Candle(format), status)
            }
            BackendKind::Ctranslate2 => {
                let (converted, requested) = self.convert(&dir, spec)?;
                let device = ct2_device(first_device, first_capability);
                let effective = ct2::effective_compute_type(requested, device, architecture);
                let status = ServingStatus {
                    backend: "ctranslate2".into(),
                    compute_type: effective.to_string(),
                    requested_compute_type: Some(requested.to_string()),
                    cache_hit: Some(converted.cache_hit),
                    cache_rebuilt_because: converted.rebuilt_because.clone(),
                    ..ServingStatus::default()
                };
                let kind = ModelKind::Ctranslate2 {
                    dir: converted.model.dir,
                    compute_type: requested,
                };
                (kind, status)
            }
        };

        let chat_template =
            ChatTemplate::for_model(spec.chat_template.as_deref(), dir.path(), architecture);
        if let Err(error) = &chat_template {
            tracing::warn!(model = %spec.model_id, %error, "chat completions will be refused");
        }
        let limits = dir.limits();
        let loader = Arc::new(RuntimeLoader {
            checkpoint: dir,
            architecture,
            kind,
            placement: placement.clone(),
            capability: self.inventory.clone(),
            shared: Mutex::new(HashMap::new()),
        });
        let label = spec.model_id.clone();
        let observer =
            Arc::new(move |sequences: usize| crate::metrics::record_batch_size(&label, sequences));
        let engine = Engine::start(
            self.engine_config(spec),
            Arc::new(tokenizer),
            limits,
            loader,
            observer,
            &|step| {
                progress.step(match step {
                    StartStep::Loading => LoadStep::Loading,
                    StartStep::Warming => LoadStep::Warming,
                })
            },
        )
        .map_err(|e| match e {
            runtime::batcher::EngineError::Load { .. } => LoadFailure::model_load(e.to_string()),
            runtime::batcher::EngineError::WarmUp { .. } => {
                LoadFailure::new("WARMUP_FAILED", e.to_string())
            }
        })?;
        Ok(Arc::new(ServingHandle::new(
            engine,
            status,
            spec.backend == BackendKind::Candle,
            chat_template,
        )))
    }
}

impl RuntimeBackend {
    fn engine_config(&self, spec: &DeploymentSpec) -> EngineConfig {
        let scaling = &spec.scaling;
        EngineConfig {
            name: spec.model_id.clone(),
            max_batch_size: scaling.max_batch_size as usize,
            max_queue: self.batcher.max_queue,
            prefill_token_budget: self.batcher.prefill_token_budget,
            min_replicas: scaling.min_replicas as usize,
            max_replicas: scaling.max_replicas as usize,
            scale_up_delay: Duration::from_millis(scaling.scale_up_delay_ms.into()),
            scale_down_delay: Duration::from_millis(scaling.scale_down_delay_ms.into()),
            scale_up_queue_wait: Duration::from_millis(self.batcher.scale_up_queue_wait_ms),
            batch_wait: Duration::from_millis(self.batcher.ctranslate2_batch_wait_ms),
            max_batch_wait: Duration::from_millis(self.batcher.ctranslate2_max_batch_wait_ms),
        }
    }
}

/// What each replica loads.
enum ModelKind {
    /// Projection weights in this format (int8 for `quantizationType: int8_float16`).
    Candle(WeightFormat),
    Ctranslate2 {
        dir: PathBuf,
        compute_type: ComputeType,
    },
}

/// Loads replicas where the placement puts them.
struct RuntimeLoader {
    /// Opened once for the deploy; every candle replica loads from it.
    checkpoint: Arc<Checkpoint>,
    architecture: Architecture,
    kind: ModelKind,
    placement: Placement,
    capability: Arc<GpuInventory>,
    /// candle weights per device: replicas on one device share them (a model holds only
    /// weights; every sequence's state is in its replica's slots).
    shared: Mutex<HashMap<String, Arc<dyn Model>>>,
}

impl ReplicaLoader for RuntimeLoader {
    fn load(&self, running: &[Option<u32>]) -> Result<LoadedReplica, String> {
        let running: Vec<ReplicaDevice> = running
            .iter()
            .map(|gpu| match (self.placement.execution(), gpu) {
                (ExecutionDevice::Cuda, Some(gpu)) => ReplicaDevice::Cuda { gpu: *gpu },
                (_, gpu) => ReplicaDevice::Cpu { gpu: *gpu },
            })
            .collect();
        let device = self
            .placement
            .next_replica(&running)
            .ok_or("no room for another replica in this deployment's placement")?;
        let capability = device.gpu().and_then(|gpu| {
            self.capability
                .state()
                .gpus()
                .iter()
                .find(|g| g.index == gpu)
                .map(|g| g.compute_capability)
        });
        let device_name = match device {
            ReplicaDevice::Cuda { gpu } => format!("cuda:{gpu}"),
            ReplicaDevice::Cpu { .. } => "cpu".to_owned(),
        };
        let model = match &self.kind {
            ModelKind::Candle(format) => {
                let target = candle_target(Some(device), capability);
                ReplicaModel::Candle(self.candle_model(&device_name, target, *format)?)
            }
            ModelKind::Ctranslate2 { dir, compute_type } => {
                let options = ct2::Ct2LoadOptions {
                    device: ct2_device(Some(device), capability),
                    device_index: device
                        .gpu()
                        .filter(|_| matches!(device, ReplicaDevice::Cuda { .. }))
                        .map_or(0, |gpu| gpu as i32),
                    compute_type: *compute_type,
                    threads: 0,
                };
                let model = ct2::Ct2Model::load(dir, self.architecture, &options)
                    .map_err(|e| e.to_string())?;
                ReplicaModel::Ctranslate2(Arc::new(model))
            }
        };
        Ok(LoadedReplica {
            model,
            device: device_name,
            gpu: device.gpu(),
        })
    }
}

impl RuntimeLoader {
    fn candle_model(
        &self,
        device_name: &str,
        target: Target,
        format: WeightFormat,
    ) -> Result<Arc<dyn Model>, String> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = shared.get(device_name) {
            return Ok(model.clone());
        }
        let model = self
            .checkpoint
            .load_with(target, format)
            .map_err(|e| e.to_string())?;
        shared.insert(device_name.to_owned(), model.clone());
        Ok(model)
    }
}

/// The candle target of a replica. NVML and CUDA agree on GPU order under
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID` (set by the systemd unit), so the NVML index is the
/// CUDA ordinal.
pub(crate) fn candle_target(
    device: Option<ReplicaDevice>,
    capability: Option<ComputeCapability>,
) -> Target {
    match device {
        Some(ReplicaDevice::Cuda { gpu }) => Target::Cuda {
            ordinal: gpu as usize,
            capability: capability.map(|cc| (cc.major, cc.minor)),
        },
        _ => Target::Cpu,
    }
}

/// The CTranslate2 device of a replica; without a known compute capability its compute
/// types are resolved as for the CPU.
pub(crate) fn ct2_device(
    device: Option<ReplicaDevice>,
    capability: Option<ComputeCapability>,
) -> Ct2Device {
    match (device, capability) {
        (Some(ReplicaDevice::Cuda { .. }), Some(cc)) => Ct2Device::Cuda {
            major: cc.major,
            minor: cc.minor,
        },
        _ => Ct2Device::Cpu,
    }
}
