//! The parts of a Hugging Face checkpoint directory the converter reads: `config.json` as
//! JSON with typed accessors, and the safetensors weights, listed and memory-mapped by
//! [`crate::checkpoint`] (one rule for shard names), every float tensor read as float32.

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use serde_json::Value;

use super::error::ConvertError;
use super::spec::Tensor;
use crate::checkpoint::{map_weights, weight_files, Checkpoint, CONFIG_FILE};

/// `config.json` as parsed JSON, with typed accessors whose errors name the field.
pub struct HfConfig {
    path: PathBuf,
    json: Value,
}

impl HfConfig {
    pub fn read(dir: &Path) -> Result<HfConfig, ConvertError> {
        let path = dir.join(CONFIG_FILE);
        let json = read_json(&path)?;
        Ok(HfConfig { path, json })
    }

    /// The config an opened checkpoint already read (no second read of the file).
    pub fn of_checkpoint(checkpoint: &Checkpoint) -> HfConfig {
        HfConfig {
            path: checkpoint.config_path().to_path_buf(),
            json: checkpoint.config_json().clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.json.get(field).filter(|v| !v.is_null())
    }

    pub fn usize(&self, field: &str) -> Result<usize, ConvertError> {
        self.get(field)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.field_error(field, "must be a non-negative integer"))
    }

    pub fn usize_or(&self, field: &str, default: usize) -> Result<usize, ConvertError> {
        match self.get(field) {
            None => Ok(default),
            Some(_) => self.usize(field),
        }
    }

    pub fn str_or<'a>(&'a self, field: &str, default: &'a str) -> Result<&'a str, ConvertError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.field_error(field, "must be a string")),
        }
    }

    pub fn bool_or(&self, field: &str, default: bool) -> Result<bool, ConvertError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.field_error(field, "must be true or false")),
        }
    }

    pub fn field_error(&self, field: &str, problem: &str) -> ConvertError {
        ConvertError::ConfigField {
            path: self.path.clone(),
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The first entry of `architectures`, or the `model_type` when that list is absent.
    pub fn architecture(&self) -> String {
        self.get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .or_else(|| self.get("model_type").and_then(Value::as_str))
            .unwrap_or("")
            .to_string()
    }
}

pub fn read_json(path: &Path) -> Result<Value, ConvertError> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ConvertError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The safetensors weights of a checkpoint directory, memory-mapped: mapped here for a
/// directory, or borrowed from an opened [`Checkpoint`].
pub struct SourceTensors<'a> {
    dir: PathBuf,
    tensors: Mapped<'a>,
}

enum Mapped<'a> {
    Owned(MmapedSafetensors),
    Borrowed(&'a MmapedSafetensors),
}

impl SourceTensors<'static> {
    pub fn open(dir: &Path) -> Result<SourceTensors<'static>, ConvertError> {
        let tensors = map_weights(&weight_files(dir)?)?;
        Ok(SourceTensors {
            dir: dir.to_path_buf(),
            tensors: Mapped::Owned(tensors),
        })
    }
}

impl<'a> SourceTensors<'a> {
    /// The weights `checkpoint` mapped when it was opened.
    pub fn of_checkpoint(checkpoint: &'a Checkpoint) -> SourceTensors<'a> {
        SourceTensors {
            dir: checkpoint.path().to_path_buf(),
            tensors: Mapped::Borrowed(checkpoint.weights()),
        }
    }

    fn mapped(&self) -> &MmapedSafetensors {
        match &self.tensors {
            Mapped::Owned(tensors) => tensors,
            Mapped::Borrowed(tensors) => tensors,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.mapped().get(name).is_ok()
    }

    /// The tensor `name` as float32.
    pub fn tensor(&self, name: &str) -> Result<Tensor, ConvertError> {
        let missing = || ConvertError::MissingTensor {
            name: name.to_string(),
            dir: self.dir.clone(),
        };
        let view = self.mapped().get(name).map_err(|_| missing())?;
        // Floating-point weights only (as CTranslate2's converter reads them).
        let stored = format!("{:?}", view.dtype());
        if !["F32", "F16", "BF16"].contains(&stored.as_str()) {
            return Err(ConvertError::TensorDtype {
                name: name.to_string(),
                dtype: stored,
            });
        }
        // candle widens half and bfloat16 exactly.
        let widened = candle_core::safetensors::Load::load(&view, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| ConvertError::Safetensors {
                path: self.dir.clone(),
                message: format!("tensor {name:?}: {e}"),
            })?;
        Ok(Tensor {
            shape: view.shape().to_vec(),
            data: widened,
        })
    }

    /// The tensor `name`, checked to have exactly `expected` shape.
    pub fn tensor_shaped(&self, name: &str, expected: &[usize]) -> Result<Tensor, ConvertError> {
        let tensor = self.tensor(name)?;
        if tensor.shape != expected {
            return Err(ConvertError::TensorShape {
                name: name.to_string(),
                found: tensor.shape,
                expected: format!("{expected:?}"),
            });
        }
        Ok(tensor)
    }
}
