//! Converted models kept under the state directory, so a redeploy skips the conversion.
//!
//! An entry lives in `<state_dir>/ctranslate2/<key>/`, where the key is the SHA-256 of the
//! converter's format version, the quantization, and the name, size and content hash of
//! every source file the conversion reads (config, weights, vocabulary, special tokens).
//! The conversion is written into a temporary sibling directory whose `manifest.json`
//! (each file's size and SHA-256) is written last, then renamed into place: an entry
//! without a valid manifest, or whose files do not match it, is rebuilt.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::convert::{convert, convert_checkpoint, Architecture, ConvertedModel};
use super::error::{CacheError, ConvertError};
use super::quantize::Quantization;
use crate::checkpoint::{weight_files, Checkpoint, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};

/// Bumped whenever the converter's output for the same input changes.
const CONVERTER_FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// Tokenizer and config files a conversion may read besides the weights.
const SOURCE_FILES: [&str; 6] = [
    "config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The conversion cache rooted in a state directory.
#[derive(Clone, Debug)]
pub struct ConversionCache {
    root: PathBuf,
}

/// A converted model from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedConversion {
    pub model: ConvertedModel,
    /// The key (hex SHA-256) the entry is stored under.
    pub key: String,
    /// A valid entry was reused; false when it was converted now.
    pub cache_hit: bool,
    /// Why an existing entry was discarded and rebuilt (absent entry: `None`).
    pub rebuilt_because: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    key: String,
    architecture: String,
    quantization: String,
    files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    size: u64,
    sha256: String,
}

impl ConversionCache {
    pub fn new(state_dir: &Path) -> ConversionCache {
        ConversionCache {
            root: state_dir.join("ctranslate2"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Converts `source` anew, replacing any cached entry: for a deploy that did not ask
    /// to reuse artifacts (`isDeployedPreviously: false`).
    pub fn rebuild<'a>(
        &self,
        source: impl Into<ConversionSource<'a>>,
        quantization: Quantization,
    ) -> Result<CachedConversion, CacheError> {
        let source = source.into();
        let key = source.key(quantization)?;
        let entry = self.root.join(&key);
        if entry.exists() {
            std::fs::remove_dir_all(&entry).map_err(|source| CacheError::Io {
                path: entry.clone(),
                source,
            })?;
        }
        // The key is passed on: hashing every weight file again would double the work.
        let architecture = source.architecture()?;
        self.get_or_convert_keyed(source, quantization, architecture, key)
    }

    /// The converted model of `source` with `quantization`, reused when a valid entry
    /// exists, converted (and stored) otherwise.
    pub fn get_or_convert<'a>(
        &self,
        source: impl Into<ConversionSource<'a>>,
        quantization: Quantization,
    ) -> Result<CachedConversion, CacheError> {
        let source = source.into();
        let architecture = source.architecture()?;
        let key = source.key(quantization)?;
        self.get_or_convert_keyed(source, quantization, architecture, key)
    }

    /// [`get_or_convert`](Self::get_or_convert) once `key` is known.
    fn get_or_convert_keyed(
        &self,
        source: ConversionSource<'_>,
        quantization: Quantization,
        architecture: Architecture,
        key: String,
    ) -> Result<CachedConversion, CacheError> {
        let entry = self.root.join(&key);
        let rebuilt_because = if entry.exists() {
            match verify(&entry, &key) {
                Ok(()) => {
                    return Ok(CachedConversion {
                        model: ConvertedModel {
                            dir: entry,
                            architecture,
                            quantization,
                        },
                        key,
                        cache_hit: true,
                        rebuilt_because: None,
                    })
                }
                Err(reason) => Some(reason),
            }
        } else {
            None
        };

        let staging = self.root.join(format!(
            ".staging-{key}-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        let result = self.build(source, quantization, architecture, &key, &staging, &entry);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result?;
        Ok(CachedConversion {
            model: ConvertedModel {
                dir: entry,
                architecture,
                quantization,
            },
            key,
            cache_hit: false,
            rebuilt_because,
        })
    }

    fn build(
        &self,
        source: ConversionSource<'_>,
        quantization: Quantization,
        architecture: Architecture,
        key: &str,
        staging: &Path,
        entry: &Path,
    ) -> Result<(), CacheError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        match source {
            ConversionSource::Dir(dir) => convert(dir, staging, quantization)?,
            ConversionSource::Opened(checkpoint) => {
                convert_checkpoint(checkpoint, staging, quantization)?
            }
        };
        let mut files = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(staging)
            .map_err(io(staging))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io(staging))?;
        names.sort();
        for name in names {
            let path = staging.join(&name);
            let (size, sha256) = hash_file(&path).map_err(io(&path))?;
            files.push(ManifestFile { name, size, sha256 });
        }
        let manifest = Manifest {
            format: CONVERTER_FORMAT,
            key: key.to_string(),
            architecture: architecture.to_string(),
            quantization: quantization.to_string(),
            files,
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| CacheError::Io {
            path: staging.join(MANIFEST),
            source: std::io::Error::other(e),
        })?;
        // The manifest is the commit record: written last, and only whole.
        let partial = staging.join(format!("{MANIFEST}.partial"));
        std::fs::write(&partial, text).map_err(io(&partial))?;
        std::fs::rename(&partial, staging.join(MANIFEST)).map_err(io(&partial))?;

        if entry.exists() {
            std::fs::remove_dir_all(entry).map_err(io(entry))?;
        }
        if let Err(error) = std::fs::rename(staging, entry) {
            // Another process may have published the same key meanwhile: use it if valid.
            if verify(entry, key).is_ok() {
                let _ = std::fs::remove_dir_all(staging);
                return Ok(());
            }
            return Err(CacheError::Io {
                path: entry.to_path_buf(),
                source: error,
            });
        }
        Ok(())
    }
}

/// Checks an entry against its manifest; the error says what is wrong.
fn verify(entry: &Path, key: &str) -> Result<(), String> {
    let manifest_path = entry.join(MANIFEST);
    let bytes = std::fs::read(&manifest_path).map_err(|e| format!("{MANIFEST}: {e}"))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST} is not valid: {e}"))?;
    if manifest.format != CONVERTER_FORMAT || manifest.key != key {
        return Err(format!("{MANIFEST} is for another key or converter format"));
    }
    if manifest.files.is_empty() {
        return Err(format!("{MANIFEST} lists no files"));
    }
    for file in &manifest.files {
        let path = entry.join(&file.name);
        let (size, sha256) = hash_file(&path).map_err(|e| format!("{}: {e}", file.name))?;
        if size != file.size {
            return Err(format!(
                "{} has {size} bytes, expected {}",
                file.name, file.size
            ));
        }
        if sha256 != file.sha256 {
            return Err(format!("{} does not match its SHA-256", file.name));
        }
    }
    Ok(())
}

/// What is converted: a directory read by the cache, or a checkpoint a deploy already
/// opened (its config, weight list and mapped weights are used, not read again).
#[derive(Clone, Copy)]
pub enum ConversionSource<'a> {
    Dir(&'a Path),
    Opened(&'a Checkpoint),
}

impl<'a> From<&'a Path> for ConversionSource<'a> {
    fn from(dir: &'a Path) -> Self {
        ConversionSource::Dir(dir)
    }
}

impl<'a> From<&'a PathBuf> for ConversionSource<'a> {
    fn from(dir: &'a PathBuf) -> Self {
        ConversionSource::Dir(dir)
    }
}

impl<'a> From<&'a Checkpoint> for ConversionSource<'a> {
    fn from(checkpoint: &'a Checkpoint) -> Self {
        ConversionSource::Opened(checkpoint)
    }
}

impl ConversionSource<'_> {
    fn architecture(self) -> Result<Architecture, ConvertError> {
        match self {
            ConversionSource::Dir(dir) => Architecture::of_checkpoint(dir),
            ConversionSource::Opened(checkpoint) => Ok(checkpoint.architecture()),
        }
    }

    fn key(self, quantization: Quantization) -> Result<String, ConvertError> {
        match self {
            ConversionSource::Dir(dir) => source_key(dir, quantization),
            ConversionSource::Opened(checkpoint) => {
                key_of_files(checkpoint.path(), checkpoint.weight_files(), quantization)
            }
        }
    }
}

/// The cache key of `source` converted with `quantization`.
pub fn source_key(source: &Path, quantization: Quantization) -> Result<String, ConvertError> {
    key_of_files(source, &weight_files(source)?, quantization)
}

/// The key over `source`'s config and tokenizer files, shard index and `weights`.
fn key_of_files(
    source: &Path,
    weights: &[PathBuf],
    quantization: Quantization,
) -> Result<String, ConvertError> {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "ctranslate2-conversion/{CONVERTER_FORMAT}/{quantization}\n"
    ));
    let mut paths: Vec<PathBuf> = SOURCE_FILES
        .iter()
        .map(|name| source.join(name))
        .filter(|p| p.is_file())
        .collect();
    // A sharded checkpoint's index is part of what was converted.
    if !source.join(WEIGHTS_FILE).is_file() {
        paths.push(source.join(WEIGHTS_INDEX_FILE));
    }
    paths.extend(weights.iter().cloned());
    for path in paths {
        let (size, sha256) = hash_file(&path).map_err(|e| ConvertError::Read {
            path: path.clone(),
            source: e,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        hasher.update(format!("{name} {size} {sha256}\n"));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// (size, hex SHA-256) of a file, read in chunks.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
