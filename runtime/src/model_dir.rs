//! A model directory in Hugging Face layout, checked before anything is loaded:
//! `config.json`, `model.safetensors` (memory-mapped), and `tokenizer.json` or GPT-2's
//! `vocab.json` + `merges.txt`. It also answers the questions the agent asks before it
//! commits GPU memory: how many bytes the weights and one slot's caches take.

use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::DType;
use serde::Deserialize;

pub use crate::load_error::LoadError;
use crate::model::gpt2::Gpt2Config;
use crate::model::t5::T5Config;
use crate::model::{Architecture, ContextLimits};

const CONFIG_FILE: &str = "config.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
const TOKENIZER_JSON: &str = "tokenizer.json";
const GPT2_VOCAB: &str = "vocab.json";
const GPT2_MERGES: &str = "merges.txt";

/// The checkpoint's architecture and its parsed `config.json`.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    Gpt2(Gpt2Config),
    T5(T5Config),
}

impl ModelConfig {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Gpt2(_) => Architecture::Gpt2,
            Self::T5(_) => Architecture::T5,
        }
    }

    pub fn limits(&self) -> ContextLimits {
        match self {
            Self::Gpt2(c) => c.limits(),
            Self::T5(c) => c.limits(),
        }
    }

    pub fn eos_token_id(&self) -> u32 {
        match self {
            Self::Gpt2(c) => c.eos_token_id,
            Self::T5(c) => c.eos_token_id,
        }
    }
}

/// Where the tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A complete `tokenizers` description (`tokenizer.json`).
    Json(PathBuf),
    /// GPT-2's original files: byte-level BPE vocabulary and merge list.
    Gpt2Bpe { vocab: PathBuf, merges: PathBuf },
}

/// A validated model directory. The weights stay memory-mapped until [`crate::load_model`]
/// copies them to the device.
pub struct ModelDir {
    path: PathBuf,
    config_path: PathBuf,
    config: ModelConfig,
    weight_files: Vec<PathBuf>,
    weights: MmapedSafetensors,
    tokenizer: TokenizerFiles,
    parameter_count: u64,
}

impl fmt::Debug for ModelDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelDir")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("weight_files", &self.weight_files)
            .field("tokenizer", &self.tokenizer)
            .field("parameter_count", &self.parameter_count)
            .finish()
    }
}

#[derive(Deserialize)]
struct ModelTypeField {
    model_type: Option<String>,
}

#[derive(Deserialize)]
struct WeightsIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

const SUPPORTED_MODEL_TYPES: &str = "gpt2, t5";

impl ModelDir {
    /// Checks that `path` holds a GPT-2 or T5 checkpoint this runtime can load: the files
    /// exist, `config.json` parses with sane values, and the safetensors headers are readable.
    /// Tensor names and shapes are checked by [`crate::load_model`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_dir() {
            return Err(LoadError::NotADirectory { dir: path });
        }
        let config_path = require_file(
            &path,
            CONFIG_FILE,
            "the model's configuration (Hugging Face config.json)",
        )?;
        let config = read_config(&config_path)?;
        let tokenizer = find_tokenizer(&path, config.architecture())?;
        let weight_files = find_weight_files(&path)?;
        let weights = map_weights(&weight_files)?;
        let parameter_count = count_parameters(&weights, config.architecture());
        Ok(Self {
            path,
            config_path,
            config,
            weight_files,
            weights,
            tokenizer,
            parameter_count,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn architecture(&self) -> Architecture {
        self.config.architecture()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn tokenizer_files(&self) -> &TokenizerFiles {
        &self.tokenizer
    }

    /// The safetensors file(s), in the order they were mapped.
    pub fn weight_files(&self) -> &[PathBuf] {
        &self.weight_files
    }

    pub fn limits(&self) -> ContextLimits {
        self.config.limits()
    }

    pub fn eos_token_id(&self) -> u32 {
        self.config.eos_token_id()
    }

    /// Parameters stored in the checkpoint, counting tied embeddings once.
    pub fn parameter_count(&self) -> u64 {
        self.parameter_count
    }

    /// Device memory the weights take once loaded in `dtype`.
    pub fn weights_bytes(&self, dtype: DType) -> u64 {
        self.parameter_count * dtype.size_in_bytes() as u64
    }

    /// Device memory of one slot's caches in `dtype`, preallocated for the full context.
    pub fn kv_bytes_per_slot(&self, dtype: DType) -> u64 {
        self.kv_elements_per_slot() * dtype.size_in_bytes() as u64
    }

    /// Elements of one slot's caches at full context: GPT-2's self-attention K/V for
    /// `n_positions` tokens; T5's decoder self-attention K/V for the most new tokens plus the
    /// cross-attention K/V for the longest prompt.
    pub fn kv_elements_per_slot(&self) -> u64 {
        let elements = match &self.config {
            ModelConfig::Gpt2(c) => 2 * c.n_layer * c.n_positions * c.n_embd,
            ModelConfig::T5(c) => {
                let limits = c.limits();
                2 * c.decoder_layers()
                    * (limits.max_new_tokens + limits.max_prompt_tokens)
                    * c.inner_dim()
            }
        };
        elements as u64
    }

    pub(crate) fn weights(&self) -> &MmapedSafetensors {
        &self.weights
    }

    /// The file named in errors about tensors (the shard index when there are several).
    pub(crate) fn weights_path(&self) -> PathBuf {
        match self.weight_files.as_slice() {
            [single] => single.clone(),
            _ => self.path.join(WEIGHTS_INDEX_FILE),
        }
    }
}

fn require_file(
    dir: &Path,
    file: &'static str,
    expected: &'static str,
) -> Result<PathBuf, LoadError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LoadError::MissingFile {
            dir: dir.to_path_buf(),
            file,
            expected,
        })
    }
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_config(path: &Path) -> Result<ModelConfig, LoadError> {
    let text = read_text(path)?;
    let unparsable = |e: serde_json::Error| LoadError::UnparsableConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let model_type: ModelTypeField = serde_json::from_str(&text).map_err(unparsable)?;
    let config = match model_type.model_type.as_deref() {
        Some("gpt2") => {
            let c: Gpt2Config = serde_json::from_str(&text).map_err(unparsable)?;
            c.validate(path)?;
            ModelConfig::Gpt2(c)
        }
        Some("t5") => {
            let c: T5Config = serde_json::from_str(&text).map_err(unparsable)?;
            c.validate(path)?;
            ModelConfig::T5(c)
        }
        Some(other) => {
            return Err(LoadError::UnknownModelType {
                path: path.to_path_buf(),
                found: other.to_string(),
                supported: SUPPORTED_MODEL_TYPES,
            })
        }
        None => {
            return Err(LoadError::MissingModelType {
                path: path.to_path_buf(),
                supported: SUPPORTED_MODEL_TYPES,
            })
        }
    };
    Ok(config)
}

fn find_tokenizer(dir: &Path, architecture: Architecture) -> Result<TokenizerFiles, LoadError> {
    let json = dir.join(TOKENIZER_JSON);
    if json.is_file() {
        return Ok(TokenizerFiles::Json(json));
    }
    let vocab = dir.join(GPT2_VOCAB);
    let merges = dir.join(GPT2_MERGES);
    if architecture == Architecture::Gpt2 && vocab.is_file() && merges.is_file() {
        return Ok(TokenizerFiles::Gpt2Bpe { vocab, merges });
    }
    if architecture == Architecture::T5 {
        return Err(LoadError::MissingFile {
            dir: dir.to_path_buf(),
            file: TOKENIZER_JSON,
            expected:
                "the T5 tokenizer (tokenizers' tokenizer.json; spiece.model alone is not supported)",
        });
    }
    Err(LoadError::MissingTokenizer {
        dir: dir.to_path_buf(),
    })
}

fn find_weight_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index_path = dir.join(WEIGHTS_INDEX_FILE);
    if !index_path.is_file() {
        return Err(LoadError::MissingFile {
            dir: dir.to_path_buf(),
            file: WEIGHTS_FILE,
            expected:
                "the weights in safetensors format (or sharded, with model.safetensors.index.json)",
        });
    }
    let index: WeightsIndex = serde_json::from_str(&read_text(&index_path)?).map_err(|e| {
        LoadError::UnparsableConfig {
            path: index_path.clone(),
            message: e.to_string(),
        }
    })?;
    let mut shards: Vec<String> = index.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    let mut files = Vec::with_capacity(shards.len());
    for shard in shards {
        // Shard names come from a file we do not control: keep them inside the directory.
        let relative = Path::new(&shard);
        if relative.components().count() != 1 {
            return Err(LoadError::InvalidConfig {
                path: index_path.clone(),
                field: "weight_map",
                expected: "file names inside the model directory".to_string(),
                found: format!("{shard:?}"),
            });
        }
        let file = dir.join(relative);
        if !file.is_file() {
            return Err(LoadError::Io {
                path: file,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "shard listed in model.safetensors.index.json is missing",
                ),
            });
        }
        files.push(file);
    }
    Ok(files)
}

fn map_weights(files: &[PathBuf]) -> Result<MmapedSafetensors, LoadError> {
    // SAFETY: the mapping is read-only; as with every memory-mapped checkpoint, the file must
    // not be truncated while the model directory is open (the agent owns its model caches).
    let mapped = unsafe {
        match files {
            [single] => MmapedSafetensors::new(single),
            _ => MmapedSafetensors::multi(files),
        }
    };
    mapped.map_err(|e| LoadError::UnreadableWeights {
        path: files.first().cloned().unwrap_or_default(),
        message: e.to_string(),
    })
}

/// Tied embeddings are sometimes stored under several names; the model holds them once.
fn count_parameters(weights: &MmapedSafetensors, architecture: Architecture) -> u64 {
    let tensors = weights.tensors();
    let has = |name: &str| tensors.iter().any(|(n, _)| n == name);
    let duplicate = |name: &str| match architecture {
        Architecture::T5 => {
            matches!(
                name,
                "encoder.embed_tokens.weight" | "decoder.embed_tokens.weight"
            ) && has("shared.weight")
        }
        // GPT-2's head is the token embedding; a stored copy is never loaded.
        Architecture::Gpt2 => name == "lm_head.weight",
    };
    tensors
        .iter()
        .filter(|(name, _)| !duplicate(name))
        .map(|(_, view)| view.shape().iter().product::<usize>() as u64)
        .sum()
}
