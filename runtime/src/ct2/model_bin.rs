//! CTranslate2's `model.bin`, binary format version 6.
//!
//! Layout (all integers little-endian): `u32` format version, the spec name, `u32` spec
//! revision, `u32` variable count, then per variable its name, `u8` rank, `u32` per
//! dimension, `u8` dtype code, `u32` byte count and the raw bytes; finally `u32` alias
//! count and (alias name, target name) pairs. A string is a `u16` length that counts a
//! trailing NUL, the UTF-8 bytes, then the NUL. Variables are written sorted by name,
//! as CTranslate2's Python converter does, so that equal models give equal files.

use std::io::Write;

use super::error::ModelBinError;

/// The binary format this module reads and writes.
pub const BINARY_VERSION: u32 = 6;

/// Element types, numbered as CTranslate2's `DataType` enum (`include/ctranslate2/types.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Float32,
    Int8,
    Int16,
    Int32,
    Float16,
    Bfloat16,
}

impl DataType {
    /// The code stored in `model.bin`.
    pub fn code(self) -> u8 {
        match self {
            DataType::Float32 => 0,
            DataType::Int8 => 1,
            DataType::Int16 => 2,
            DataType::Int32 => 3,
            DataType::Float16 => 4,
            DataType::Bfloat16 => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<DataType> {
        Some(match code {
            0 => DataType::Float32,
            1 => DataType::Int8,
            2 => DataType::Int16,
            3 => DataType::Int32,
            4 => DataType::Float16,
            5 => DataType::Bfloat16,
            _ => return None,
        })
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            DataType::Int8 => 1,
            DataType::Int16 | DataType::Float16 | DataType::Bfloat16 => 2,
            DataType::Float32 | DataType::Int32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Float32 => "float32",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Float16 => "float16",
            DataType::Bfloat16 => "bfloat16",
        }
    }
}

/// One stored variable: its scoped name (`decoder/layer_0/ffn/linear_0/weight`), shape,
/// element type and raw little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DataType,
    pub data: Vec<u8>,
}

/// A whole `model.bin`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelBin {
    pub spec_name: String,
    pub spec_revision: u32,
    /// Sorted by name.
    pub variables: Vec<Variable>,
    /// (alias, target), sorted by alias.
    pub aliases: Vec<(String, String)>,
}

impl ModelBin {
    /// Serialises the model; fails only if a name or size does not fit the format.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), ModelBinError> {
        out.write_all(&BINARY_VERSION.to_le_bytes())?;
        write_string(out, &self.spec_name)?;
        out.write_all(&self.spec_revision.to_le_bytes())?;
        out.write_all(&count_u32(self.variables.len(), "variable count")?.to_le_bytes())?;
        for variable in &self.variables {
            write_string(out, &variable.name)?;
            let rank = u8::try_from(variable.shape.len()).map_err(|_| ModelBinError::TooLarge {
                what: format!("rank of {}", variable.name),
                value: variable.shape.len(),
            })?;
            out.write_all(&[rank])?;
            for &dim in &variable.shape {
                out.write_all(&count_u32(dim, &variable.name)?.to_le_bytes())?;
            }
            out.write_all(&[variable.dtype.code()])?;
            out.write_all(&count_u32(variable.data.len(), &variable.name)?.to_le_bytes())?;
            out.write_all(&variable.data)?;
        }
        out.write_all(&count_u32(self.aliases.len(), "alias count")?.to_le_bytes())?;
        for (alias, target) in &self.aliases {
            write_string(out, alias)?;
            write_string(out, target)?;
        }
        Ok(())
    }

    /// Parses a `model.bin`; every size is checked against the bytes that remain.
    pub fn parse(bytes: &[u8]) -> Result<ModelBin, ModelBinError> {
        let mut cursor = Cursor { bytes, offset: 0 };
        let version = cursor.u32("binary version")?;
        if version != BINARY_VERSION {
            return Err(ModelBinError::UnsupportedVersion { found: version });
        }
        let spec_name = cursor.string("spec name")?;
        let spec_revision = cursor.u32("spec revision")?;
        let count = cursor.u32("variable count")? as usize;
        let mut variables = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            let name = cursor.string("variable name")?;
            let rank = cursor.take(1, &name)?[0] as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(cursor.u32(&name)? as usize);
            }
            let code = cursor.take(1, &name)?[0];
            let dtype =
                DataType::from_code(code).ok_or_else(|| ModelBinError::UnknownDataType {
                    variable: name.clone(),
                    code,
                })?;
            let num_bytes = cursor.u32(&name)? as usize;
            let expected = shape.iter().product::<usize>() * dtype.size_in_bytes();
            if num_bytes != expected {
                return Err(ModelBinError::SizeMismatch {
                    variable: name,
                    expected,
                    found: num_bytes,
                });
            }
            let data = cursor.take(num_bytes, &name)?.to_vec();
            variables.push(Variable {
                name,
                shape,
                dtype,
                data,
            });
        }
        let alias_count = cursor.u32("alias count")? as usize;
        let mut aliases = Vec::with_capacity(alias_count.min(4096));
        for _ in 0..alias_count {
            let alias = cursor.string("alias name")?;
            let target = cursor.string("alias target")?;
            aliases.push((alias, target));
        }
        if cursor.offset != bytes.len() {
            return Err(ModelBinError::TrailingBytes {
                count: bytes.len() - cursor.offset,
            });
        }
        Ok(ModelBin {
            spec_name,
            spec_revision,
            variables,
            aliases,
        })
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }
}

fn count_u32(value: usize, what: &str) -> Result<u32, ModelBinError> {
    u32::try_from(value).map_err(|_| ModelBinError::TooLarge {
        what: what.to_string(),
        value,
    })
}

fn write_string(out: &mut impl Write, text: &str) -> Result<(), ModelBinError> {
    let length = u16::try_from(text.len() + 1).map_err(|_| ModelBinError::TooLarge {
        what: format!("name {text:?}"),
        value: text.len(),
    })?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(text.as_bytes())?;
    out.write_all(&[0])?;
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelBinError> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| ModelBinError::Truncated {
                what: what.to_string(),
                offset: self.offset,
            })?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelBinError> {
        let raw = self.take(4, what)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelBinError> {
        let raw = self.take(2, what)?;
        let length = u16::from_le_bytes([raw[0], raw[1]]) as usize;
        let raw = self.take(length, what)?;
        match raw.split_last() {
            Some((0, text)) => {
                String::from_utf8(text.to_vec()).map_err(|_| ModelBinError::BadString {
                    what: what.to_string(),
                })
            }
            _ => Err(ModelBinError::BadString {
                what: what.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ModelBin {
        ModelBin {
            spec_name: "TransformerDecoderSpec".into(),
            spec_revision: 8,
            variables: vec![
                Variable {
                    name: "decoder/num_heads".into(),
                    shape: vec![],
                    dtype: DataType::Int16,
                    data: 2i16.to_le_bytes().to_vec(),
                },
                Variable {
                    name: "decoder/w".into(),
                    shape: vec![2, 1],
                    dtype: DataType::Float32,
                    data: [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat(),
                },
            ],
            aliases: vec![("decoder/v".into(), "decoder/w".into())],
        }
    }

    #[test]
    fn written_model_parses_back_to_the_same_model() {
        let mut bytes = Vec::new();
        sample().write_to(&mut bytes).unwrap();
        assert_eq!(ModelBin::parse(&bytes).unwrap(), sample());
    }

    #[test]
    fn strings_carry_a_length_that_counts_the_trailing_nul() {
        let mut bytes = Vec::new();
        sample().write_to(&mut bytes).unwrap();
        // version (4) then the name's length: 22 characters + NUL.
        assert_eq!(&bytes[4..6], &23u16.to_le_bytes());
        assert_eq!(bytes[6 + 22], 0);
    }

    #[test]
    fn truncated_file_is_an_error_naming_what_was_cut() {
        let mut bytes = Vec::new();
        sample().write_to(&mut bytes).unwrap();
        bytes.truncate(bytes.len() - 3);
        let err = ModelBin::parse(&bytes).unwrap_err();
        assert!(matches!(err, ModelBinError::Truncated { .. }), "{err}");
    }

    #[test]
    fn other_binary_versions_are_refused() {
        let mut bytes = Vec::new();
        sample().write_to(&mut bytes).unwrap();
        bytes[0] = 5;
        assert!(matches!(
            ModelBin::parse(&bytes),
            Err(ModelBinError::UnsupportedVersion { found: 5 })
        ));
    }
}
