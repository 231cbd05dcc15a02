//! Hugging Face checkpoint directory → CTranslate2 model directory (`model.bin`,
//! `config.json`, `vocabulary.json` or `shared_vocabulary.json`), natively in Rust.
//! With `Quantization::Float32` (and, as far as tested, `Int8Float16`) the files are
//! byte-identical to those of CTranslate2 4.8's `ct2-transformers-converter`.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::ConvertError;
use super::py_json::PyJson;
use super::quantize::Quantization;
use super::source::{HfConfig, SourceTensors};
use super::{gpt2_spec, t5_spec};
use crate::checkpoint::Checkpoint;

pub use crate::model::Architecture;

/// CTranslate2's view of the architectures: GPT-2 runs on its `Generator`, T5 on its
/// `Translator`.
impl Architecture {
    /// Reads `architectures` (or `model_type`) from the checkpoint's `config.json`.
    pub fn of_checkpoint(dir: &Path) -> Result<Architecture, ConvertError> {
        let config = HfConfig::read(dir)?;
        Architecture::from_config(&config)
    }

    fn from_config(config: &HfConfig) -> Result<Architecture, ConvertError> {
        match config.architecture().as_str() {
            "GPT2LMHeadModel" | "gpt2" => Ok(Architecture::Gpt2),
            "T5ForConditionalGeneration" | "t5" => Ok(Architecture::T5),
            other => Err(ConvertError::UnsupportedArchitecture {
                path: config.path().to_path_buf(),
                found: other.to_string(),
            }),
        }
    }

    /// The vocabulary file CTranslate2 expects for this model family.
    pub fn vocabulary_file(self) -> &'static str {
        match self {
            Architecture::Gpt2 => "vocabulary.json",
            Architecture::T5 => "shared_vocabulary.json",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Architecture::Gpt2 => "gpt2",
            Architecture::T5 => "t5",
        })
    }
}

/// A converted model directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertedModel {
    pub dir: PathBuf,
    pub architecture: Architecture,
    pub quantization: Quantization,
}

/// Converts the checkpoint in `source` into `dest` (created if needed; the three files
/// are overwritten).
pub fn convert(
    source: &Path,
    dest: &Path,
    quantization: Quantization,
) -> Result<ConvertedModel, ConvertError> {
    let config = HfConfig::read(source)?;
    let architecture = Architecture::from_config(&config)?;
    let weights = SourceTensors::open(source)?;
    write_conversion(source, &config, architecture, weights, dest, quantization)
}

/// [`convert()`] of a checkpoint a deploy already opened: its config and mapped weights are
/// used as they are (the tokenizer files, which the checkpoint only locates, are read here).
pub fn convert_checkpoint(
    checkpoint: &Checkpoint,
    dest: &Path,
    quantization: Quantization,
) -> Result<ConvertedModel, ConvertError> {
    let config = HfConfig::of_checkpoint(checkpoint);
    let architecture = Architecture::from_config(&config)?;
    let weights = SourceTensors::of_checkpoint(checkpoint);
    write_conversion(
        checkpoint.path(),
        &config,
        architecture,
        weights,
        dest,
        quantization,
    )
}

fn write_conversion(
    source: &Path,
    config: &HfConfig,
    architecture: Architecture,
    weights: SourceTensors<'_>,
    dest: &Path,
    quantization: Quantization,
) -> Result<ConvertedModel, ConvertError> {
    let parts = match architecture {
        Architecture::Gpt2 => gpt2_spec::build(source, config, &weights)?,
        Architecture::T5 => t5_spec::build(source, config, &weights)?,
    };
    drop(weights);
    let model = parts.spec.build(quantization);

    std::fs::create_dir_all(dest).map_err(|source| ConvertError::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    let bin_path = dest.join("model.bin");
    let file = File::create(&bin_path).map_err(|source| ConvertError::Write {
        path: bin_path.clone(),
        source,
    })?;
    let mut out = BufWriter::new(file);
    model.write_to(&mut out)?;
    out.flush().map_err(|source| ConvertError::Write {
        path: bin_path.clone(),
        source,
    })?;

    // config.json ends with a newline, the vocabulary does not (as in Python).
    write_text(&dest.join("config.json"), &(parts.config.to_text() + "\n"))?;
    let vocabulary = PyJson::List(parts.vocabulary.into_iter().map(PyJson::Str).collect());
    write_text(&dest.join(parts.vocabulary_file), &vocabulary.to_text())?;

    Ok(ConvertedModel {
        dir: dest.to_path_buf(),
        architecture,
        quantization,
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), ConvertError> {
    std::fs::write(path, text).map_err(|source| ConvertError::Write {
        path: path.to_path_buf(),
        source,
    })
}
