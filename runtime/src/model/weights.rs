//! Typed access to a checkpoint's tensors: each one is looked up by the checkpoint's own name,
//! checked against the shape the config implies, and converted to the compute dtype on the
//! device. A missing or misshapen tensor is a [`LoadError`] that names it. This is the
//! models' view of a checkpoint (candle's `VarBuilder`): the tensors, already mapped by the
//! checkpoint reader, and where and in which dtype to put them.

use std::path::{Path, PathBuf};

use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Tensor};

use super::target::WeightFormat;
use crate::load_error::LoadError;

/// Safetensors element types (as the format spells them) that convert to a compute dtype.
const FLOAT_DTYPES: [&str; 4] = ["F32", "F16", "BF16", "F64"];

pub struct Weights<'a> {
    tensors: &'a MmapedSafetensors,
    /// The file errors name (the shard index when there are several).
    path: PathBuf,
    device: Device,
    dtype: DType,
    /// How projection weights are to be held (the models' `Linear`s and heads).
    format: WeightFormat,
    prefix: String,
}

impl<'a> Weights<'a> {
    /// The tensors of `path` (memory-mapped), to be placed on `device` in `dtype`.
    pub fn new(tensors: &'a MmapedSafetensors, path: &Path, device: &Device, dtype: DType) -> Self {
        Self {
            tensors,
            path: path.to_path_buf(),
            device: device.clone(),
            dtype,
            format: WeightFormat::Float,
            prefix: String::new(),
        }
    }

    /// The same tensors, with projection weights held in `format`.
    pub fn with_format(self, format: WeightFormat) -> Self {
        Self { format, ..self }
    }

    pub(crate) fn format(&self) -> WeightFormat {
        self.format
    }

    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    pub(crate) fn dtype(&self) -> DType {
        self.dtype
    }

    /// Looks every later name up under `prefix` (e.g. GPT-2's optional `transformer.`).
    pub(crate) fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            path: self.path.clone(),
            device: self.device.clone(),
            ..*self
        }
    }

    /// Whether `name` (without the prefix) is stored.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors.get(&self.full_name(name)).is_ok()
    }

    /// The tensor stored exactly as `name`, ignoring the prefix (GPT-2's `lm_head.weight`
    /// sits beside `transformer.*`).
    pub(crate) fn unprefixed(&self, name: &str, shape: &[usize]) -> Result<Tensor, LoadError> {
        self.load_exact(name, shape, self.dtype)
    }

    /// The tensor `name`, which must have `shape`, in the compute dtype on the device.
    pub(crate) fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, LoadError> {
        self.load_exact(&self.full_name(name), shape, self.dtype)
    }

    /// Like [`Self::tensor`] but kept in f32: norm scales and position biases are small and
    /// feed f32 arithmetic (layer norm, softmax) whatever the compute dtype.
    pub(crate) fn tensor_f32(&self, name: &str, shape: &[usize]) -> Result<Tensor, LoadError> {
        self.load_exact(&self.full_name(name), shape, DType::F32)
    }

    /// The first of `names` that is stored (checkpoints spell shared tensors differently).
    pub(crate) fn first_of(&self, names: &[&str], shape: &[usize]) -> Result<Tensor, LoadError> {
        let found = names.iter().find(|name| self.contains(name));
        match found {
            Some(name) => self.tensor(name, shape),
            None => Err(LoadError::MissingTensor {
                path: self.path.clone(),
                name: names
                    .iter()
                    .map(|n| self.full_name(n))
                    .collect::<Vec<_>>()
                    .join("\" or \""),
                expected: shape.to_vec(),
            }),
        }
    }

    fn full_name(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    fn load_exact(&self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor, LoadError> {
        let view = self
            .tensors
            .get(name)
            .map_err(|_| LoadError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        if view.shape() != shape {
            return Err(LoadError::TensorShape {
                path: self.path.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        // Floating-point weights only: an integer or packed tensor here is a different format.
        let stored = format!("{:?}", view.dtype());
        if !FLOAT_DTYPES.contains(&stored.as_str()) {
            return Err(LoadError::TensorDtype {
                path: self.path.clone(),
                name: name.to_string(),
                found: stored,
            });
        }
        let device_error = |source| LoadError::Device {
            path: self.path.clone(),
            name: name.to_string(),
            source: Box::new(source),
        };
        let tensor = view.load(&self.device).map_err(device_error)?;
        tensor.to_dtype(dtype).map_err(device_error)
    }
}
