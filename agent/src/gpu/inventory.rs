//! Reads the GPU inventory through NVML (nvml-wrapper) from the configured library.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use super::device::{
    ComputeCapability, CudaDriverVersion, Gpu, GpuHost, GpuMemory, InventoryState, MigMode,
};

/// The host's GPUs as NVML reports them, shared by the HTTP handlers, the admission check
/// and the metrics refresher.
///
/// NVML is initialised once and kept; [`refresh`](Self::refresh) rescans (memory in use
/// changes all the time) and, while NVML is unavailable, tries to initialise it again, so
/// a driver loaded after the agent started is picked up without a restart.
#[derive(Debug)]
pub struct GpuInventory {
    library: PathBuf,
    /// `None` while NVML is unavailable. Scans hold this lock, so they never interleave.
    nvml: Mutex<Option<Nvml>>,
    state: RwLock<Arc<InventoryState>>,
}

impl GpuInventory {
    /// Loads NVML from `library` (a path, or a file name the dynamic loader searches for)
    /// and scans. Never fails: a missing library or driver is an
    /// [`InventoryState::NvmlUnavailable`] state.
    pub fn open(library: impl Into<PathBuf>) -> Self {
        let inventory = GpuInventory {
            library: library.into(),
            nvml: Mutex::new(None),
            state: RwLock::new(Arc::new(InventoryState::NvmlUnavailable {
                reason: "NVML has not been read yet".to_owned(),
            })),
        };
        inventory.refresh();
        inventory
    }

    /// The library path this inventory loads NVML from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// The result of the last scan, without touching NVML.
    pub fn state(&self) -> Arc<InventoryState> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Rescans the GPUs (initialising NVML first if it is not) and returns the new state.
    pub fn refresh(&self) -> Arc<InventoryState> {
        let mut nvml = self.nvml.lock().unwrap_or_else(PoisonError::into_inner);
        let state = match self.scan_with(&mut nvml) {
            Ok(host) => InventoryState::Available(host),
            Err(reason) => InventoryState::NvmlUnavailable { reason },
        };
        let state = Arc::new(state);
        let previous = std::mem::replace(
            &mut *self.state.write().unwrap_or_else(PoisonError::into_inner),
            Arc::clone(&state),
        );
        log_transition(&previous, &state);
        state
    }

    fn scan_with(&self, nvml: &mut Option<Nvml>) -> Result<GpuHost, String> {
        let handle = match nvml {
            Some(handle) => handle,
            None => nvml.insert(init(&self.library)?),
        };
        let scanned = scan(handle);
        if scanned.is_err() {
            // A failed query (driver unloaded, GPU fallen off the bus) may have left the
            // handle useless; start from a fresh initialisation next time.
            *nvml = None;
        }
        scanned
    }
}

fn init(library: &Path) -> Result<Nvml, String> {
    Nvml::builder()
        .lib_path(library.as_os_str())
        .init()
        .map_err(|error| match error {
            NvmlError::LibloadingError(load) => {
                format!("cannot load the NVML library {}: {load}", library.display())
            }
            NvmlError::FailedToLoadSymbol(symbol) => format!(
                "{} is not a usable NVML library: {symbol}",
                library.display()
            ),
            other => format!(
                "NVML from {} failed to initialise: {other}",
                library.display()
            ),
        })
}

fn scan(nvml: &Nvml) -> Result<GpuHost, String> {
    let driver_version = nvml
        .sys_driver_version()
        .map_err(|e| query_failed("the driver version", e))?;
    // The CUDA version comes from libcuda behind NVML; its absence is worth showing, not failing.
    let cuda_driver_version = nvml
        .sys_cuda_driver_version()
        .ok()
        .and_then(CudaDriverVersion::from_nvml);
    let count = nvml
        .device_count()
        .map_err(|e| query_failed("the GPU count", e))?;
    let gpus = (0..count)
        .map(|index| read_gpu(nvml, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GpuHost {
        driver_version,
        cuda_driver_version,
        gpus,
    })
}

fn read_gpu(nvml: &Nvml, index: u32) -> Result<Gpu, String> {
    let what = |field: &str| format!("GPU {index}'s {field}");
    let device = nvml
        .device_by_index(index)
        .map_err(|e| query_failed(&what("handle"), e))?;
    let name = device.name().map_err(|e| query_failed(&what("name"), e))?;
    let uuid = device.uuid().map_err(|e| query_failed(&what("UUID"), e))?;
    let memory = device
        .memory_info()
        .map_err(|e| query_failed(&what("memory"), e))?;
    let capability = device
        .cuda_compute_capability()
        .map_err(|e| query_failed(&what("compute capability"), e))?;
    let compute_capability = ComputeCapability {
        major: u32::try_from(capability.major)
            .map_err(|_| negative(&what("compute capability")))?,
        minor: u32::try_from(capability.minor)
            .map_err(|_| negative(&what("compute capability")))?,
    };
    let mig = match device.mig_mode() {
        Ok(mode) if mode.current == NVML_DEVICE_MIG_ENABLE => MigMode::Enabled,
        Ok(_) => MigMode::Disabled,
        Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => MigMode::Unsupported,
        Err(e) => return Err(query_failed(&what("MIG mode"), e)),
    };
    Ok(Gpu {
        index,
        name,
        uuid,
        memory: GpuMemory {
            total_bytes: memory.total,
            used_bytes: memory.used,
            free_bytes: memory.free,
        },
        compute_capability,
        mig,
    })
}

/// `NVML_DEVICE_MIG_ENABLE` in nvml.h; nvml-wrapper does not re-export it.
const NVML_DEVICE_MIG_ENABLE: u32 = 1;

fn query_failed(what: &str, error: NvmlError) -> String {
    format!("NVML could not report {what}: {error}")
}

fn negative(what: &str) -> String {
    format!("NVML reported a negative value for {what}")
}

fn log_transition(previous: &InventoryState, current: &InventoryState) {
    match (previous, current) {
        (
            InventoryState::NvmlUnavailable { reason: old },
            InventoryState::NvmlUnavailable { reason },
        ) if old == reason => {}
        (_, InventoryState::NvmlUnavailable { reason }) => {
            tracing::warn!(%reason, "NVML unavailable; GPU device classes cannot be admitted");
        }
        (InventoryState::NvmlUnavailable { .. }, InventoryState::Available(host)) => {
            tracing::info!(
                gpus = host.gpus.len(),
                driver = %host.driver_version,
                "NVML available"
            );
        }
        (InventoryState::Available(_), InventoryState::Available(_)) => {}
    }
}

// The inventory is shared across HTTP handlers and background tasks.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<GpuInventory>();
};
