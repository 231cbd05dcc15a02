//! The parts of a Hugging Face checkpoint directory the converter reads: `config.json`
//! and the safetensors weights (one file, or shards listed in
//! `model.safetensors.index.json`), every float tensor read as float32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use super::error::ConvertError;
use super::spec::Tensor;

/// `config.json` as parsed JSON, with typed accessors whose errors name the field.
pub struct HfConfig {
    path: PathBuf,
    json: Value,
}

impl HfConfig {
    pub fn read(dir: &Path) -> Result<HfConfig, ConvertError> {
        let path = dir.join("config.json");
        let json = read_json(&path)?;
        Ok(HfConfig { path, json })
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

/// The safetensors weights of a checkpoint directory.
pub struct Checkpoint {
    dir: PathBuf,
    shards: Vec<(PathBuf, Vec<u8>)>,
    /// tensor name → index into `shards`.
    index: HashMap<String, usize>,
}

/// The weight files of `dir`, in the order their bytes are hashed for the cache key.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    let index = read_json(&index_path)?;
    let map = index
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| ConvertError::ConfigField {
            path: index_path.clone(),
            field: "weight_map".into(),
            problem: "must be an object of tensor name → shard file".into(),
        })?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    let mut paths = Vec::with_capacity(files.len() + 1);
    paths.push(index_path.clone());
    for file in files {
        // Shard names come from the checkpoint: keep them inside its directory.
        if Path::new(&file).components().count() != 1 {
            return Err(ConvertError::ConfigField {
                path: index_path.clone(),
                field: "weight_map".into(),
                problem: format!("names shard {file:?} outside the checkpoint directory"),
            });
        }
        paths.push(dir.join(file));
    }
    Ok(paths)
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint, ConvertError> {
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for path in weight_files(dir)? {
            if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| ConvertError::Read {
                path: path.clone(),
                source,
            })?;
            let parsed =
                SafeTensors::deserialize(&bytes).map_err(|e| ConvertError::Safetensors {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            for name in parsed.names() {
                index.insert(name.to_string(), shards.len());
            }
            shards.push((path, bytes));
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            shards,
            index,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The tensor `name` as float32.
    pub fn tensor(&self, name: &str) -> Result<Tensor, ConvertError> {
        let missing = || ConvertError::MissingTensor {
            name: name.to_string(),
            dir: self.dir.clone(),
        };
        let (path, bytes) = self
            .index
            .get(name)
            .map(|&i| &self.shards[i])
            .ok_or_else(missing)?;
        let parsed = SafeTensors::deserialize(bytes).map_err(|e| ConvertError::Safetensors {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let view = parsed.tensor(name).map_err(|_| missing())?;
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            other => {
                return Err(ConvertError::TensorDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(Tensor {
            shape: view.shape().to_vec(),
            data,
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

/// IEEE half → float32 (exact).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits & 0x8000) as u32) << 16;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x03ff) as u32;
    let magnitude = match exponent {
        0 => {
            // Subnormal (or zero): mantissa × 2^-24, exact in float32.
            let value = mantissa as f32 * 2f32.powi(-24);
            return if sign == 0 { value } else { -value };
        }
        0x1f => 0x7f80_0000 | (mantissa << 13),
        _ => ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(sign | magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct2::quantize::f32_to_f16_bits;

    #[test]
    fn half_precision_reads_back_exactly() {
        for v in [
            0.0f32,
            -0.0,
            1.0,
            -2.5,
            65504.0,
            f32::from_bits(0x3380_0000),
            -f32::from_bits(0x387f_c000),
        ] {
            assert_eq!(f16_to_f32(f32_to_f16_bits(v)).to_bits(), v.to_bits(), "{v}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
