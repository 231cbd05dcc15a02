//! The device-class catalog: which hardware each `deviceType` promises
//! (`docs/gpu-admission.md` § Device-class catalog).
//!
//! The facts live in `configs/device-classes.toml`, compiled into the binary as the default;
//! `[gpu] device_classes` points at a replacement file. Request validation takes the
//! accepted names from here, so a class added to the file is accepted everywhere.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::config::GpuConfig;
use super::device::ComputeCapability;

/// `configs/device-classes.toml` as it was when the binary was built.
pub const BUILT_IN_CATALOG: &str = include_str!("../../../configs/device-classes.toml");

/// What a device class needs from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassHardware {
    /// Runs on the CPU; accepted only when the agent's config sets `allow_cpu = true`.
    Cpu,
    Gpus(GpuRequirement),
}

/// The GPUs a class promises: exactly `count` of them, each one matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuRequirement {
    pub count: u32,
    /// A substring of the NVML name ("NVIDIA A10G"), so driver-specific suffixes still match.
    pub name_contains: String,
    /// Total memory of each GPU, as `nvidia-smi` reports it.
    pub memory_mib: u64,
    pub compute_capability: ComputeCapability,
    /// How far a GPU's total memory may differ from `memory_mib`, in percent of it.
    pub memory_tolerance_percent: u32,
}

impl GpuRequirement {
    /// Whether `total_mib` is within the tolerance of the class's memory.
    pub(crate) fn memory_matches(&self, total_mib: u64) -> bool {
        let difference = total_mib.abs_diff(self.memory_mib);
        u128::from(difference) * 100
            <= u128::from(self.memory_mib) * u128::from(self.memory_tolerance_percent)
    }
}

impl fmt::Display for GpuRequirement {
    /// "1× NVIDIA A10G, 23028 MiB", the form used in admission messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}× {}, {} MiB",
            self.count, self.name_contains, self.memory_mib
        )
    }
}

/// One `deviceType` and what it promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceClass {
    pub name: String,
    pub hardware: ClassHardware,
}

impl DeviceClass {
    /// The GPUs the class needs, or `None` for a CPU class.
    pub fn gpus(&self) -> Option<&GpuRequirement> {
        match &self.hardware {
            ClassHardware::Cpu => None,
            ClassHardware::Gpus(requirement) => Some(requirement),
        }
    }
}

/// A catalog that could not be read or that breaks the catalog's rules.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("cannot read the device-class catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the device-class catalog {origin} is not valid TOML for a catalog: {source}")]
    Syntax {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("the device-class catalog {origin}: device class {class:?}: {problem}")]
    InvalidClass {
        origin: String,
        class: String,
        problem: String,
    },
    #[error(
        "the device-class catalog {origin}: memory_tolerance_percent must be 0–100, given {given}"
    )]
    Tolerance { origin: String, given: u32 },
    #[error("the device-class catalog {origin} defines no device classes")]
    Empty { origin: String },
}

/// A `deviceType` the catalog does not accept.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UnknownDeviceType {
    #[error("deviceType must be one of {allowed}; given {given:?}")]
    NotInCatalog { given: String, allowed: String },
    #[error("deviceType {given:?} runs models on the CPU and is accepted only when the agent's config sets allow_cpu = true")]
    CpuNotAllowed { given: String },
}

/// The loaded catalog. Classes keep the file's order.
#[derive(Clone, Debug)]
pub struct DeviceCatalog {
    classes: Vec<DeviceClass>,
    allow_cpu: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    memory_tolerance_percent: u32,
    #[serde(default)]
    device_class: Vec<ClassEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    device_type: String,
    gpu_count: u32,
    gpu_name: Option<String>,
    memory_mib: Option<u64>,
    compute_capability: Option<ComputeCapability>,
}

impl DeviceCatalog {
    /// The catalog `config` names, or the built-in one. `allow_cpu` is the agent's
    /// top-level `allow_cpu` key.
    pub fn load(config: &GpuConfig, allow_cpu: bool) -> Result<Self, CatalogError> {
        match &config.device_classes {
            Some(path) => Self::from_file(path, allow_cpu),
            None => Self::built_in(allow_cpu),
        }
    }

    /// The catalog compiled into the binary.
    pub fn built_in(allow_cpu: bool) -> Result<Self, CatalogError> {
        Self::parse(
            BUILT_IN_CATALOG,
            "built-in configs/device-classes.toml",
            allow_cpu,
        )
    }

    pub(crate) fn from_file(path: &Path, allow_cpu: bool) -> Result<Self, CatalogError> {
        let text = fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), allow_cpu)
    }

    /// Parses catalog TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, allow_cpu: bool) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|source| CatalogError::Syntax {
            origin: origin.to_owned(),
            source: Box::new(source),
        })?;
        if file.memory_tolerance_percent > 100 {
            return Err(CatalogError::Tolerance {
                origin: origin.to_owned(),
                given: file.memory_tolerance_percent,
            });
        }
        if file.device_class.is_empty() {
            return Err(CatalogError::Empty {
                origin: origin.to_owned(),
            });
        }
        let mut classes: Vec<DeviceClass> = Vec::with_capacity(file.device_class.len());
        for entry in file.device_class {
            let invalid = |problem: &str| CatalogError::InvalidClass {
                origin: origin.to_owned(),
                class: entry.device_type.clone(),
                problem: problem.to_owned(),
            };
            if entry.device_type.trim().is_empty() {
                return Err(invalid("device_type must not be empty"));
            }
            if classes.iter().any(|c| c.name == entry.device_type) {
                return Err(invalid("defined twice"));
            }
            let hardware =
                class_hardware(&entry, file.memory_tolerance_percent).map_err(|p| invalid(&p))?;
            classes.push(DeviceClass {
                name: entry.device_type,
                hardware,
            });
        }
        Ok(DeviceCatalog { classes, allow_cpu })
    }

    /// The accepted `deviceType` names, in catalog order (CPU classes only with `allow_cpu`).
    pub fn names(&self) -> Vec<&str> {
        self.accepted().map(|class| class.name.as_str()).collect()
    }

    /// The accepted classes, in catalog order.
    pub fn classes(&self) -> impl Iterator<Item = &DeviceClass> {
        self.accepted()
    }

    /// The class a deploy's `deviceType` names.
    pub fn lookup(&self, device_type: &str) -> Result<&DeviceClass, UnknownDeviceType> {
        match self.classes.iter().find(|class| class.name == device_type) {
            Some(class) if self.is_accepted(class) => Ok(class),
            Some(_) => Err(UnknownDeviceType::CpuNotAllowed {
                given: device_type.to_owned(),
            }),
            None => Err(UnknownDeviceType::NotInCatalog {
                // Echoed in the 422: a huge value is cut.
                given: crate::validation::excerpt(device_type),
                allowed: self.names().join(", "),
            }),
        }
    }

    fn accepted(&self) -> impl Iterator<Item = &DeviceClass> {
        self.classes.iter().filter(|class| self.is_accepted(class))
    }

    fn is_accepted(&self, class: &DeviceClass) -> bool {
        self.allow_cpu || class.hardware != ClassHardware::Cpu
    }
}

/// A class with `gpu_count = 0` is a CPU class and names no GPU; any other names all of it.
fn class_hardware(entry: &ClassEntry, tolerance_percent: u32) -> Result<ClassHardware, String> {
    if entry.gpu_count == 0 {
        if entry.gpu_name.is_some()
            || entry.memory_mib.is_some()
            || entry.compute_capability.is_some()
        {
            return Err("a CPU class (gpu_count = 0) must not set gpu_name, memory_mib or compute_capability".to_owned());
        }
        return Ok(ClassHardware::Cpu);
    }
    let missing = |key: &str| format!("gpu_count = {} needs {key}", entry.gpu_count);
    let name = entry
        .gpu_name
        .as_deref()
        .ok_or_else(|| missing("gpu_name"))?;
    if name.trim().is_empty() {
        return Err("gpu_name must not be empty".to_owned());
    }
    let memory_mib = entry.memory_mib.ok_or_else(|| missing("memory_mib"))?;
    if memory_mib == 0 {
        return Err("memory_mib must be at least 1".to_owned());
    }
    Ok(ClassHardware::Gpus(GpuRequirement {
        count: entry.gpu_count,
        name_contains: name.to_owned(),
        memory_mib,
        compute_capability: entry
            .compute_capability
            .ok_or_else(|| missing("compute_capability"))?,
        memory_tolerance_percent: tolerance_percent,
    }))
}
