//! A model specification being filled: scoped variable names → values, then turned into
//! a [`ModelBin`] the way CTranslate2's Python `ModelSpec` does it — duplicates become
//! aliases of the alphabetically first equal variable, then weights are quantized, then
//! everything is written sorted by name.

use std::collections::{BTreeMap, HashMap};

use super::model_bin::{DataType, ModelBin, Variable};
use super::py_json::PyJson;
use super::quantize::{quantize, Quantization};

/// A float tensor read from the checkpoint (row-major, as float32).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// `[rows, cols]` → `[cols, rows]` (GPT-2's Conv1D stores weights transposed).
    pub fn transposed(&self) -> Tensor {
        let (rows, cols) = match self.shape.as_slice() {
            [rows, cols] => (*rows, *cols),
            _ => return self.clone(),
        };
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Tensor {
            shape: vec![cols, rows],
            data,
        }
    }

    /// Stacks 2-D tensors with the same column count along the rows (CTranslate2 fuses
    /// q/k/v projections this way).
    pub fn concat_rows(parts: &[&Tensor]) -> Tensor {
        let cols = parts.first().map(|t| t.shape.get(1).copied().unwrap_or(0));
        let rows = parts
            .iter()
            .map(|t| t.shape.first().copied().unwrap_or(0))
            .sum();
        Tensor {
            shape: vec![rows, cols.unwrap_or(0)],
            data: parts.iter().flat_map(|t| t.data.iter().copied()).collect(),
        }
    }

    /// Element-wise equality as `torch.equal` (so -0.0 equals 0.0 and NaN equals nothing).
    fn equals(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data.iter().zip(&other.data).all(|(a, b)| a == b)
    }

    fn content_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.shape.hash(&mut hasher);
        for v in &self.data {
            // -0.0 and 0.0 compare equal, so they must hash equal.
            let canonical = if *v == 0.0 { 0.0f32 } else { *v };
            canonical.to_bits().hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// A scalar attribute of the spec, stored with its own integer or float type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// Booleans and small enums (`pre_norm`, `activation`).
    I8(i8),
    I16(i16),
    I32(i32),
    F32(f32),
}

#[derive(Clone, Debug)]
enum Value {
    /// `quantizable`: a linear or embedding weight (has a `weight_scale` slot).
    Tensor {
        tensor: Tensor,
        quantizable: bool,
    },
    Scalar(Scalar),
}

/// The variables of one model spec, by scoped name.
#[derive(Clone, Debug)]
pub struct SpecBuilder {
    name: &'static str,
    revision: u32,
    values: BTreeMap<String, Value>,
}

impl SpecBuilder {
    pub fn new(name: &'static str, revision: u32) -> SpecBuilder {
        SpecBuilder {
            name,
            revision,
            values: BTreeMap::new(),
        }
    }

    /// A float tensor that is never quantized to int8 (norms, biases, position tables).
    pub fn tensor(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.values.insert(
            name.into(),
            Value::Tensor {
                tensor,
                quantizable: false,
            },
        );
    }

    /// A linear or embedding weight: int8 quantizations store it as int8 + row scales.
    pub fn weight(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.values.insert(
            name.into(),
            Value::Tensor {
                tensor,
                quantizable: true,
            },
        );
    }

    pub fn scalar(&mut self, name: impl Into<String>, value: Scalar) {
        self.values.insert(name.into(), Value::Scalar(value));
    }

    pub fn flag(&mut self, name: impl Into<String>, value: bool) {
        self.scalar(name, Scalar::I8(i8::from(value)));
    }

    /// Aliases duplicates, quantizes, and lays out the variables sorted by name.
    pub fn build(self, quantization: Quantization) -> ModelBin {
        let aliases = find_aliases(&self.values);
        let mut variables: BTreeMap<String, Variable> = BTreeMap::new();
        for (name, value) in &self.values {
            if aliases.contains_key(name) {
                continue;
            }
            match value {
                Value::Scalar(scalar) => {
                    variables.insert(name.clone(), scalar_variable(name, *scalar));
                }
                Value::Tensor {
                    tensor,
                    quantizable,
                } => {
                    let rows = tensor.shape.first().copied().unwrap_or(1);
                    let q = quantize(&tensor.data, rows, *quantizable, quantization);
                    if let Some(scales) = q.row_scales {
                        let scale_name = format!("{name}_scale");
                        variables.insert(
                            scale_name.clone(),
                            Variable {
                                name: scale_name,
                                shape: vec![rows],
                                dtype: DataType::Float32,
                                data: scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                            },
                        );
                    }
                    variables.insert(
                        name.clone(),
                        Variable {
                            name: name.clone(),
                            shape: tensor.shape.clone(),
                            dtype: q.dtype,
                            data: q.data,
                        },
                    );
                }
            }
        }
        ModelBin {
            spec_name: self.name.to_string(),
            spec_revision: self.revision,
            variables: variables.into_values().collect(),
            aliases: aliases.into_iter().collect(),
        }
    }
}

fn scalar_variable(name: &str, scalar: Scalar) -> Variable {
    let (dtype, data) = match scalar {
        Scalar::I8(v) => (DataType::Int8, v.to_le_bytes().to_vec()),
        Scalar::I16(v) => (DataType::Int16, v.to_le_bytes().to_vec()),
        Scalar::I32(v) => (DataType::Int32, v.to_le_bytes().to_vec()),
        Scalar::F32(v) => (DataType::Float32, v.to_le_bytes().to_vec()),
    };
    Variable {
        name: name.to_string(),
        shape: vec![],
        dtype,
        data,
    }
}

/// alias name → target name. A tensor equal to an earlier (alphabetically) tensor is an
/// alias of the first such tensor; scalars are never aliased.
fn find_aliases(values: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let mut representatives: HashMap<u64, Vec<(&str, &Tensor)>> = HashMap::new();
    let mut aliases = BTreeMap::new();
    for (name, value) in values {
        let Value::Tensor { tensor, .. } = value else {
            continue;
        };
        if tensor.shape.is_empty() {
            continue;
        }
        let bucket = representatives.entry(tensor.content_hash()).or_default();
        match bucket.iter().find(|(_, earlier)| earlier.equals(tensor)) {
            Some((target, _)) => {
                aliases.insert(name.clone(), target.to_string());
            }
            None => bucket.push((name, tensor)),
        }
    }
    aliases
}

/// What an architecture's spec builder hands back to be written.
pub struct SpecParts {
    pub spec: SpecBuilder,
    /// The model's `config.json` (special tokens and flags).
    pub config: PyJson,
    /// Tokens by id.
    pub vocabulary: Vec<String>,
    pub vocabulary_file: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn equal_tensors_become_aliases_of_the_alphabetically_first() {
        let mut spec = SpecBuilder::new("S", 1);
        spec.tensor("c", t(&[2], &[1.0, 2.0]));
        spec.tensor("a", t(&[2], &[1.0, 2.0]));
        spec.tensor("b", t(&[2], &[1.0, 3.0]));
        spec.tensor("d", t(&[1, 2], &[1.0, 2.0])); // same values, other shape
        let bin = spec.build(Quantization::Float32);
        assert_eq!(bin.aliases, vec![("c".to_string(), "a".to_string())]);
        let names: Vec<_> = bin.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "d"]);
    }

    #[test]
    fn negative_zero_equals_zero_but_nan_equals_nothing() {
        let mut spec = SpecBuilder::new("S", 1);
        spec.tensor("a", t(&[1], &[0.0]));
        spec.tensor("b", t(&[1], &[-0.0]));
        spec.tensor("c", t(&[1], &[f32::NAN]));
        spec.tensor("d", t(&[1], &[f32::NAN]));
        let bin = spec.build(Quantization::Float32);
        assert_eq!(bin.aliases, vec![("b".to_string(), "a".to_string())]);
    }

    #[test]
    fn equal_scalars_are_not_aliased() {
        let mut spec = SpecBuilder::new("S", 1);
        spec.flag("x", true);
        spec.flag("y", true);
        assert!(spec.build(Quantization::Float32).aliases.is_empty());
    }

    #[test]
    fn int8_quantization_adds_a_scale_beside_each_weight_only() {
        let mut spec = SpecBuilder::new("S", 1);
        spec.weight("lin/weight", t(&[2, 2], &[1.0, -0.5, 0.25, 0.5]));
        spec.tensor("lin/bias", t(&[2], &[1.0, 2.0]));
        spec.scalar("q", Scalar::F32(1.0));
        let bin = spec.build(Quantization::Int8Float16);
        let by_name: Vec<_> = bin
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.dtype))
            .collect();
        assert_eq!(
            by_name,
            [
                ("lin/bias", DataType::Float16),
                ("lin/weight", DataType::Int8),
                ("lin/weight_scale", DataType::Float32),
                ("q", DataType::Float32),
            ]
        );
    }

    #[test]
    fn conv1d_weights_transpose_to_out_by_in() {
        let w = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).transposed();
        assert_eq!(w.shape, vec![3, 2]);
        assert_eq!(w.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
