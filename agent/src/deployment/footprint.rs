//! A replica's memory need, estimated from the checkpoint's files before anything is
//! loaded: the weight files' size, and the KV cache of one slot at the model's full
//! context from `config.json`'s dimensions. Deliberately conservative: weights count at
//! their on-disk size, and the cache at 4 bytes per element.

use std::path::Path;

use serde_json::Value;

use crate::gpu::MemoryNeed;

/// Context length assumed for models whose config names none (T5 has relative positions).
const DEFAULT_CONTEXT: u64 = 512;
const BYTES_PER_ELEMENT: u64 = 4;

/// The estimate for the model in `dir`. Missing or odd files give a smaller estimate; the
/// load reports them properly.
pub fn estimate(dir: &Path) -> MemoryNeed {
    MemoryNeed {
        weights_bytes: weights_bytes(dir),
        kv_bytes_per_slot: kv_bytes_per_slot(dir),
    }
}

fn weights_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        // The fixtures' reference logits are not weights.
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with("reference"))
        })
        .filter_map(|p| std::fs::metadata(&p).ok())
        .map(|m| m.len())
        .sum()
}

fn kv_bytes_per_slot(dir: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
        return 0;
    };
    let Ok(config) = serde_json::from_str::<Value>(&text) else {
        return 0;
    };
    let number = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| config.get(*k).and_then(Value::as_u64))
    };
    let context =
        number(&["n_positions", "n_ctx", "max_position_embeddings"]).unwrap_or(DEFAULT_CONTEXT);
    let is_encoder_decoder = config
        .get("is_encoder_decoder")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if is_encoder_decoder {
        // Decoder self-attention K/V plus cross-attention K/V over the encoder output.
        let layers = number(&["num_decoder_layers", "num_layers"]).unwrap_or(0);
        let inner = match (number(&["num_heads"]), number(&["d_kv"])) {
            (Some(heads), Some(d_kv)) => heads.saturating_mul(d_kv),
            _ => number(&["d_model"]).unwrap_or(0),
        };
        2u64.saturating_mul(2)
            .saturating_mul(layers)
            .saturating_mul(context)
            .saturating_mul(inner)
            .saturating_mul(BYTES_PER_ELEMENT)
    } else {
        let layers = number(&["n_layer", "num_hidden_layers", "num_layers"]).unwrap_or(0);
        let hidden = number(&["n_embd", "hidden_size", "d_model"]).unwrap_or(0);
        2u64.saturating_mul(layers)
            .saturating_mul(context)
            .saturating_mul(hidden)
            .saturating_mul(BYTES_PER_ELEMENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    #[test]
    fn gpt2_fixture_needs_its_weights_and_a_full_context_cache() {
        let need = estimate(&fixture("gpt2-tiny"));
        let weights = std::fs::metadata(fixture("gpt2-tiny/model.safetensors"))
            .unwrap()
            .len();
        assert_eq!(need.weights_bytes, weights);
        assert!(need.kv_bytes_per_slot > 0);
    }

    #[test]
    fn t5_fixture_counts_cross_attention_too() {
        let need = estimate(&fixture("t5-tiny"));
        assert!(need.weights_bytes > 0 && need.kv_bytes_per_slot > 0);
    }

    #[test]
    fn a_directory_without_files_needs_nothing_known() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            estimate(dir.path()),
            MemoryNeed {
                weights_bytes: 0,
                kv_bytes_per_slot: 0
            }
        );
    }
}
