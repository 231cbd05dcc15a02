//! The one reader of a Hugging Face checkpoint directory, checked before anything is loaded:
//! `config.json`, the safetensors weights (`model.safetensors`, or the shards listed in
//! `model.safetensors.index.json`, memory-mapped), and the tokenizer (`tokenizer.json`, or
//! GPT-2's `vocab.json` + `merges.txt`). It also answers the questions the agent asks before
//! it commits GPU memory: how many bytes the weights and one slot's caches take.
//!
//! Models never open files: [`Checkpoint::load_model`] hands them the mapped tensors and the
//! parsed config. The CTranslate2 converter lists and maps the weights through
//! [`weight_files`] and [`map_weights`]; the agent validates a downloaded shard index with
//! [`shard_names`] before fetching the shards it names.
//!
//! **Shard names.** A name in the index's `weight_map` must be a plain file name: one path
//! component, not `.` or `..`, no `/` or `\`, not absolute, not empty. Anything else
//! (`../escape`, `/etc/passwd`, `sub/shard.safetensors`) is refused with
//! [`LoadError::InvalidConfig`] naming the index and the shard, before any file is touched —
//! so a checkpoint can never make the agent read, or download to, a path outside its
//! directory. See `docs/models.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use serde::Deserialize;

pub use crate::load_error::LoadError;
use crate::model::gpt2::Gpt2Config;
use crate::model::t5::T5Config;
use crate::model::{
    load_model, Architecture, ContextLimits, MemoryEstimate, Model, ModelConfig, Precision, Target,
    WeightFormat, Weights,
};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_JSON: &str = "tokenizer.json";
pub const GPT2_VOCAB: &str = "vocab.json";
pub const GPT2_MERGES: &str = "merges.txt";

/// Files a checkpoint may hold besides its config and weights, fetched with it when present:
/// the tokenizer in either form, the added and special tokens the CTranslate2 converter
/// reads, generation defaults, and T5's SentencePiece model.
pub const COMPANION_FILES: &[&str] = &[
    "generation_config.json",
    TOKENIZER_JSON,
    "tokenizer_config.json",
    "special_tokens_map.json",
    GPT2_VOCAB,
    GPT2_MERGES,
    "spiece.model",
];

/// Where the tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A complete `tokenizers` description (`tokenizer.json`).
    Json(PathBuf),
    /// GPT-2's original files: byte-level BPE vocabulary and merge list.
    Gpt2Bpe { vocab: PathBuf, merges: PathBuf },
}

/// A validated checkpoint directory. The weights stay memory-mapped until
/// [`Checkpoint::load_model`] copies them to the device. A deploy opens its checkpoint once
/// and shares it (`Arc<Checkpoint>`) between the memory estimate, the tokenizer and every
/// replica's load.
pub struct Checkpoint {
    path: PathBuf,
    config_path: PathBuf,
    config: ModelConfig,
    /// `config.json` as JSON, for readers that need fields [`ModelConfig`] does not keep
    /// (the CTranslate2 converter).
    config_json: serde_json::Value,
    weight_files: Vec<PathBuf>,
    weights: MmapedSafetensors,
    tokenizer: TokenizerFiles,
    parameter_count: u64,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
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
    weight_map: BTreeMap<String, String>,
}

const SUPPORTED_MODEL_TYPES: &str = "gpt2, t5";

impl Checkpoint {
    /// Checks that `path` holds a GPT-2 or T5 checkpoint this runtime can load: the files
    /// exist, `config.json` parses with sane values, and the safetensors headers are readable.
    /// Tensor names and shapes are checked by [`Checkpoint::load_model`].
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
        let (config, config_json) = read_config(&config_path)?;
        let tokenizer = find_tokenizer(&path, config.architecture())?;
        let weight_files = weight_files(&path)?;
        let weights = map_weights(&weight_files)?;
        let parameter_count = count_parameters(&weights, config.architecture());
        Ok(Self {
            path,
            config_path,
            config,
            config_json,
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

    pub fn config_json(&self) -> &serde_json::Value {
        &self.config_json
    }

    /// The memory-mapped weights, opened once by [`Checkpoint::open`].
    pub fn weights(&self) -> &MmapedSafetensors {
        &self.weights
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

    /// Elements of one slot's caches at full context (see
    /// [`ModelConfig::kv_elements_per_slot`]).
    pub fn kv_elements_per_slot(&self) -> u64 {
        self.config.kv_elements_per_slot()
    }

    /// What a replica of this model needs on `target`, in its default precision.
    pub fn memory_estimate(&self, target: Target) -> MemoryEstimate {
        let dtype = target.precision(self.architecture()).dtype();
        MemoryEstimate {
            weights_bytes: self.weights_bytes(dtype),
            kv_bytes_per_slot: self.kv_bytes_per_slot(dtype),
        }
    }

    /// [`Checkpoint::memory_estimate`] with projection weights in `format`. Int8 weights take
    /// one byte each; the float32 embedding table the lookup keeps reading is counted at
    /// four (its int8 head copy, for a tied head, is within the one-byte count).
    pub fn memory_estimate_with(&self, target: Target, format: WeightFormat) -> MemoryEstimate {
        let float = self.memory_estimate(target);
        match format {
            WeightFormat::Float => float,
            WeightFormat::Int8 => MemoryEstimate {
                weights_bytes: self.parameter_count
                    + self.config.embedding_elements() * DType::F32.size_in_bytes() as u64,
                ..float
            },
        }
    }

    /// Loads the model onto `device`, computing in `dtype` (F32 on CPU; F16/BF16 on CUDA).
    pub fn load_model(&self, device: &Device, dtype: DType) -> Result<Arc<dyn Model>, LoadError> {
        self.load_from(device, dtype, WeightFormat::Float)
    }

    /// Loads the model on `target`, in its default precision there.
    pub fn load_on(&self, target: Target) -> Result<Arc<dyn Model>, LoadError> {
        self.load_with(target, WeightFormat::Float)
    }

    /// Loads the model on `target`, computing in `precision`.
    pub fn load_in(
        &self,
        target: Target,
        precision: Precision,
    ) -> Result<Arc<dyn Model>, LoadError> {
        self.load_from(&target.device()?, precision.dtype(), WeightFormat::Float)
    }

    /// Loads the model on `target` in its default precision there, with projection weights
    /// held in `format` (int8: CPU only, docs/models.md § int8 weights).
    pub fn load_with(
        &self,
        target: Target,
        format: WeightFormat,
    ) -> Result<Arc<dyn Model>, LoadError> {
        let precision = target.precision(self.architecture());
        self.load_from(&target.device()?, precision.dtype(), format)
    }

    fn load_from(
        &self,
        device: &Device,
        dtype: DType,
        format: WeightFormat,
    ) -> Result<Arc<dyn Model>, LoadError> {
        let weights =
            Weights::new(&self.weights, &self.weights_path(), device, dtype).with_format(format);
        load_model(&self.config, &weights)
    }

    /// The file named in errors about tensors (the shard index when there are several).
    fn weights_path(&self) -> PathBuf {
        match self.weight_files.as_slice() {
            [single] => single.clone(),
            _ => self.path.join(WEIGHTS_INDEX_FILE),
        }
    }
}

/// The weight files of the checkpoint in `dir`: `model.safetensors`, else every shard
/// `model.safetensors.index.json` names (sorted, each once, each a plain file name that
/// exists in `dir`).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
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
    let mut files = Vec::new();
    for shard in shard_names(&index_path)? {
        let file = dir.join(shard);
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

/// The shard file names a `model.safetensors.index.json` lists, sorted and each once, every
/// one checked by [`shard_file_name`].
pub fn shard_names(index_path: &Path) -> Result<Vec<String>, LoadError> {
    let index: WeightsIndex =
        serde_json::from_str(&read_text(index_path)?).map_err(|e| LoadError::UnparsableConfig {
            path: index_path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut shards: Vec<String> = index.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    for shard in &shards {
        shard_file_name(index_path, shard)?;
    }
    Ok(shards)
}

/// `name` if it is a plain file name — exactly one normal path component, no separator of
/// either kind — so that joining it to the checkpoint directory stays inside it. Shard names
/// come from a file we do not control (a downloaded index). `index_path` is named in the error.
pub fn shard_file_name<'a>(index_path: &Path, name: &'a str) -> Result<&'a str, LoadError> {
    let mut components = Path::new(name).components();
    let plain = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(part)), None) if part == name
    ) && !name.contains('\\');
    if plain {
        Ok(name)
    } else {
        Err(LoadError::InvalidConfig {
            path: index_path.to_path_buf(),
            field: "weight_map",
            expected: "file names inside the model directory".to_string(),
            found: format!("{name:?}"),
        })
    }
}

/// Memory-maps the safetensors `files` (one, or the shards of one checkpoint).
pub fn map_weights(files: &[PathBuf]) -> Result<MmapedSafetensors, LoadError> {
    // SAFETY: the mapping is read-only; as with every memory-mapped checkpoint, the file must
    // not be truncated while the checkpoint is open (the agent owns its model caches).
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

/// The typed config and the JSON it was read from.
fn read_config(path: &Path) -> Result<(ModelConfig, serde_json::Value), LoadError> {
    let text = read_text(path)?;
    let unparsable = |e: serde_json::Error| LoadError::UnparsableConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(unparsable)?;
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
    Ok((config, json))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn index_naming(shards: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let map: BTreeMap<String, &str> = shards
            .iter()
            .enumerate()
            .map(|(i, shard)| (format!("t{i}.weight"), *shard))
            .collect();
        let index = serde_json::json!({ "metadata": {}, "weight_map": map });
        std::fs::write(dir.path().join(WEIGHTS_INDEX_FILE), index.to_string()).unwrap();
        dir
    }

    fn refused(shard: &str) {
        let dir = index_naming(&["model-00001-of-00002.safetensors", shard]);
        // A file the escape would reach, so only the rule can refuse it.
        let error = weight_files(dir.path()).expect_err(shard);
        assert!(
            matches!(error, LoadError::InvalidConfig { field: "weight_map", ref found, .. }
                if found == &format!("{shard:?}")),
            "{shard}: {error}"
        );
        assert!(error.to_string().contains(WEIGHTS_INDEX_FILE), "{error}");
    }

    #[test]
    fn shard_names_that_leave_the_directory_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("escape.safetensors");
        std::fs::write(&target, b"x").unwrap();
        refused("../escape.safetensors");
        refused(target.to_str().unwrap());
        refused("/etc/passwd");
        refused("sub/model.safetensors");
        refused("./model.safetensors");
        refused("model.safetensors/");
        refused("..");
        refused(".");
        refused("");
        refused("..\\escape.safetensors");
    }

    #[test]
    fn plain_shard_names_are_listed_sorted_and_once() {
        let dir = index_naming(&["b.safetensors", "a.safetensors", "b.safetensors"]);
        for shard in ["a.safetensors", "b.safetensors"] {
            std::fs::write(dir.path().join(shard), b"x").unwrap();
        }
        assert_eq!(
            shard_names(&dir.path().join(WEIGHTS_INDEX_FILE)).unwrap(),
            ["a.safetensors", "b.safetensors"]
        );
        assert_eq!(
            weight_files(dir.path()).unwrap(),
            [
                dir.path().join("a.safetensors"),
                dir.path().join("b.safetensors")
            ]
        );
    }
}
