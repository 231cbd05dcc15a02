//! A replica's memory need, estimated from the checkpoint before anything is loaded: the
//! runtime's count of the weights and of one slot's caches at full context, in f32 (the
//! widest precision a replica may run in, so the check errs on the safe side).

use std::path::Path;

use runtime::model::Target;
use runtime::model_dir::ModelDir;

use crate::gpu::MemoryNeed;

/// The estimate for the model in `dir`. A directory that does not open as a model needs
/// nothing known here; the load reports what is wrong with it.
pub fn estimate(dir: &Path) -> MemoryNeed {
    match ModelDir::open(dir) {
        Ok(model) => {
            let estimate = Target::Cpu.memory_estimate(&model);
            MemoryNeed {
                weights_bytes: estimate.weights_bytes,
                kv_bytes_per_slot: estimate.kv_bytes_per_slot,
            }
        }
        Err(_) => MemoryNeed {
            weights_bytes: 0,
            kv_bytes_per_slot: 0,
        },
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
    fn gpt2_fixture_needs_its_f32_weights_and_a_full_context_cache() {
        let need = estimate(&fixture("gpt2-tiny"));
        // The fixture is saved in f32, so its tensors' bytes are the weights' size.
        let file = std::fs::metadata(fixture("gpt2-tiny/model.safetensors"))
            .unwrap()
            .len();
        assert!(need.weights_bytes <= file && need.weights_bytes > file * 9 / 10);
        // 2 (K and V) × 2 layers × 128 positions × 32 wide × 4 bytes.
        assert_eq!(need.kv_bytes_per_slot, 2 * 2 * 128 * 32 * 4);
    }

    #[test]
    fn t5_fixture_counts_cross_attention_too() {
        let need = estimate(&fixture("t5-tiny"));
        // 2 × 2 decoder layers × (512 new + 512 prompt positions) × 32 wide × 4 bytes.
        assert_eq!(need.kv_bytes_per_slot, 2 * 2 * 1024 * 32 * 4);
        assert!(need.weights_bytes > 0);
    }

    #[test]
    fn a_directory_without_a_model_needs_nothing_known() {
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
