//! A test-only `libnvidia-ml.so` and the hardware descriptions tests give it.
//!
//! The library (`src/fake_nvml.c`, compiled by `build.rs`) exports the NVML entry points
//! gpu-agent reaches through nvml-wrapper, so tests run the real nvml-wrapper code path
//! against hardware they choose. It answers from `fake-nvml.conf` in the directory it was
//! loaded from, re-read on every call.
//!
//! [`FakeHardware::install`] copies the library into a fresh temporary directory together
//! with its description. Each copy is loaded by the dynamic loader as a separate object with
//! its own state, so tests running in parallel in one process never share hardware (an
//! environment variable would be process-global; a symlink or hard link would be
//! de-duplicated by the loader into one object).
//!
//! ```no_run
//! let fake = fake_nvml::FakeHardware::a10g(1).install().unwrap();
//! // give fake.library() to the agent as `[gpu] nvml_library`
//! # let _ = fake.library();
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// NVML's return code when the kernel driver is not loaded.
pub const NVML_ERROR_DRIVER_NOT_LOADED: i32 = 9;
/// NVML's return code when the caller may not talk to the driver.
pub const NVML_ERROR_NO_PERMISSION: i32 = 4;

const CONFIG_FILE: &str = "fake-nvml.conf";
/// The name the real driver package installs, so a copy looks like the real thing.
const LIBRARY_FILE: &str = "libnvidia-ml.so.1";

/// The compiled fake library. Load a copy made by [`FakeHardware::install`], not this file:
/// its description would be shared by every test.
pub fn library_path() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/libnvidia-ml.so"))
}

/// Whether MIG is supported and, if so, enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeMig {
    /// The GPU has no MIG (T4, A10G, L40S): NVML answers `NOT_SUPPORTED`.
    Unsupported,
    Disabled,
    Enabled,
}

/// One GPU as NVML will report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeGpu {
    pub name: String,
    pub uuid: String,
    pub memory_total_mib: u64,
    pub memory_used_mib: u64,
    pub compute_capability: (u32, u32),
    pub mig: FakeMig,
    /// Fallen off the bus: every query on it fails with `NVML_ERROR_GPU_IS_LOST`.
    pub lost: bool,
}

/// The GPUs and driver a fake library reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeHardware {
    pub driver_version: String,
    /// As NVML encodes it: 1000 × major + 10 × minor (12040 = CUDA 12.4).
    pub cuda_driver_version: i32,
    pub gpus: Vec<FakeGpu>,
    /// When set, `nvmlInit` fails with this NVML return code.
    pub init_error: Option<i32>,
}

/// Real drivers' names, memory sizes (as `nvidia-smi` prints them) and compute capabilities.
const TESLA_T4: (&str, u64, (u32, u32)) = ("Tesla T4", 15360, (7, 5));
const NVIDIA_A10G: (&str, u64, (u32, u32)) = ("NVIDIA A10G", 23028, (8, 6));
const NVIDIA_L40S: (&str, u64, (u32, u32)) = ("NVIDIA L40S", 46068, (8, 9));

impl FakeGpu {
    /// An idle GPU of a given model, with a stable UUID derived from model and index.
    pub fn idle(
        name: &str,
        memory_total_mib: u64,
        compute_capability: (u32, u32),
        index: usize,
    ) -> Self {
        let model_tag = name.bytes().fold(0u32, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u32::from(b))
        });
        FakeGpu {
            name: name.to_owned(),
            uuid: format!("GPU-{model_tag:08x}-0000-4000-8000-{index:012x}"),
            memory_total_mib,
            memory_used_mib: 0,
            compute_capability,
            mig: FakeMig::Unsupported,
            lost: false,
        }
    }
}

impl FakeHardware {
    /// `count` idle GPUs of one model behind a 550-series driver (CUDA 12.4).
    pub fn uniform(
        name: &str,
        memory_total_mib: u64,
        compute_capability: (u32, u32),
        count: usize,
    ) -> Self {
        FakeHardware {
            driver_version: "550.54.15".to_owned(),
            cuda_driver_version: 12040,
            gpus: (0..count)
                .map(|i| FakeGpu::idle(name, memory_total_mib, compute_capability, i))
                .collect(),
            init_error: None,
        }
    }

    /// `count` × Tesla T4 (g4dn: 1, 4 or 8).
    pub fn t4(count: usize) -> Self {
        let (name, mib, cc) = TESLA_T4;
        Self::uniform(name, mib, cc, count)
    }

    /// `count` × NVIDIA A10G (g5: 1, 4 or 8).
    pub fn a10g(count: usize) -> Self {
        let (name, mib, cc) = NVIDIA_A10G;
        Self::uniform(name, mib, cc, count)
    }

    /// `count` × NVIDIA L40S (g6e.xlarge: 1).
    pub fn l40s(count: usize) -> Self {
        let (name, mib, cc) = NVIDIA_L40S;
        Self::uniform(name, mib, cc, count)
    }

    /// One A10G that another process has almost filled: 128 MiB free.
    pub fn full_a10g() -> Self {
        let mut hardware = Self::a10g(1);
        hardware.gpus[0].memory_used_mib = NVIDIA_A10G.1 - 128;
        hardware
    }

    /// A host whose NVIDIA kernel driver is not loaded: `nvmlInit` fails with
    /// `NVML_ERROR_DRIVER_NOT_LOADED`, as on a GPU instance before the driver is installed.
    pub fn failing_driver() -> Self {
        FakeHardware {
            init_error: Some(NVML_ERROR_DRIVER_NOT_LOADED),
            ..Self::t4(1)
        }
    }

    /// The same hardware with `used_mib` in use on GPU `index` (ignored if there is none).
    pub fn with_memory_used(mut self, index: usize, used_mib: u64) -> Self {
        if let Some(gpu) = self.gpus.get_mut(index) {
            gpu.memory_used_mib = used_mib;
        }
        self
    }

    /// Copies the fake library into a new temporary directory with this description.
    pub fn install(&self) -> io::Result<FakeNvml> {
        let dir = tempfile::Builder::new().prefix("fake-nvml-").tempdir()?;
        let library = dir.path().join(LIBRARY_FILE);
        fs::copy(library_path(), &library)?;
        let fake = FakeNvml { dir, library };
        fake.set_hardware(self)?;
        Ok(fake)
    }

    /// The description in the format `fake_nvml.c` reads (documented at its top).
    fn to_config(&self) -> io::Result<String> {
        let mut text = String::from("# written by fake-nvml's FakeHardware\n");
        if let Some(code) = self.init_error {
            text.push_str(&format!("init_error {code}\n"));
        }
        single_word("driver_version", &self.driver_version)?;
        text.push_str(&format!("driver_version {}\n", self.driver_version));
        text.push_str(&format!(
            "cuda_driver_version {}\n",
            self.cuda_driver_version
        ));
        for gpu in &self.gpus {
            single_word("uuid", &gpu.uuid)?;
            if gpu.name.trim().is_empty() || gpu.name.contains('\n') {
                return Err(invalid(format!(
                    "GPU name must be one non-empty line, given {:?}",
                    gpu.name
                )));
            }
            let mig = match gpu.mig {
                FakeMig::Unsupported => "unsupported",
                FakeMig::Disabled => "disabled",
                FakeMig::Enabled => "enabled",
            };
            let (major, minor) = gpu.compute_capability;
            text.push_str(&format!(
                "gpu {} {} {major} {minor} {mig} {} {}\n",
                gpu.memory_total_mib, gpu.memory_used_mib, gpu.uuid, gpu.name
            ));
        }
        for (index, gpu) in self.gpus.iter().enumerate() {
            if gpu.lost {
                text.push_str(&format!("lost {index}\n"));
            }
        }
        Ok(text)
    }
}

fn single_word(field: &str, value: &str) -> io::Result<()> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "{field} must be one word without spaces, given {value:?}"
        )));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// An installed fake: a private copy of the library and its description. Dropping it removes
/// the directory (unload every NVML handle on it first).
#[derive(Debug)]
pub struct FakeNvml {
    dir: TempDir,
    library: PathBuf,
}

impl FakeNvml {
    /// The library path to hand to nvml-wrapper (`[gpu] nvml_library`).
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// The directory holding the library and `fake-nvml.conf`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the hardware; the next NVML call sees it. Written to a temporary file and
    /// renamed, so a concurrent NVML call reads either the old or the new description.
    pub fn set_hardware(&self, hardware: &FakeHardware) -> io::Result<()> {
        let staged = self.dir.path().join(format!("{CONFIG_FILE}.tmp"));
        fs::write(&staged, hardware.to_config()?)?;
        fs::rename(&staged, self.dir.path().join(CONFIG_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_the_c_side_cannot_parse_is_refused_before_writing() {
        let mut spaced_uuid = FakeHardware::t4(1);
        spaced_uuid.gpus[0].uuid = "GPU- 1".to_owned();
        let error = spaced_uuid.install().expect_err("uuid with a space");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("uuid"), "{error}");

        let mut two_line_name = FakeHardware::t4(1);
        two_line_name.gpus[0].name = "Tesla\nT4".to_owned();
        assert!(two_line_name.install().is_err());
    }

    #[test]
    fn an_installed_fake_is_a_private_copy_with_its_description() {
        let fake = FakeHardware::a10g(2).install().expect("install");
        assert_ne!(fake.library(), library_path());
        assert!(fake.library().starts_with(fake.dir()));
        let config = fs::read_to_string(fake.dir().join(CONFIG_FILE)).expect("config written");
        assert_eq!(config.lines().filter(|l| l.starts_with("gpu ")).count(), 2);
        assert!(config.contains(" NVIDIA A10G\n"), "{config}");
    }
}
