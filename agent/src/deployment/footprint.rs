//! A replica's memory need, estimated from the checkpoint before anything is loaded: the
//! runtime's count of the weights and of one slot's caches at full context, in the
//! precision the replica will run in there — candle's default dtype for the device,
//! CTranslate2's effective compute type (int8 weights take a quarter of float32's room).

use runtime::checkpoint::Checkpoint;
use runtime::ct2;

use super::spec::{BackendKind, DeploymentSpec};
use crate::gpu::{ComputeCapability, MemoryNeed, ReplicaDevice};
use crate::runtime_backend::{candle_target, ct2_device};

/// Where a replica's weights and caches will live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicaHost {
    Cpu,
    /// A GPU of this compute capability (the device class's).
    Gpu(ComputeCapability),
}

/// The estimate for `checkpoint` deployed as `spec` on `host`. Without a checkpoint (not
/// on disk yet, or a directory that does not open as one) nothing is known here; the load
/// reports what is wrong with it.
pub(crate) fn estimate(
    checkpoint: Option<&Checkpoint>,
    spec: &DeploymentSpec,
    host: ReplicaHost,
) -> MemoryNeed {
    let Some(model) = checkpoint else {
        return MemoryNeed::UNKNOWN;
    };
    // Mapped as the serving backend maps a replica's device (any GPU index will do).
    let (device, capability) = match host {
        ReplicaHost::Cpu => (None, None),
        ReplicaHost::Gpu(cc) => (Some(ReplicaDevice::Cuda { gpu: 0 }), Some(cc)),
    };
    let estimate = match spec.backend {
        BackendKind::Candle => model.memory_estimate_with(
            candle_target(device, capability),
            spec.quantization.candle_weights(),
        ),
        BackendKind::Ctranslate2 => {
            let requested = spec.quantization.ct2_requested();
            let device = ct2_device(device, capability);
            let effective = ct2::effective_compute_type(requested, device, model.architecture());
            ct2::memory_estimate(model, effective)
        }
    };
    MemoryNeed {
        weights_bytes: estimate.weights_bytes,
        kv_bytes_per_slot: estimate.kv_bytes_per_slot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::spec::Quantization;
    use std::path::Path;

    const A10G: ReplicaHost = ReplicaHost::Gpu(ComputeCapability { major: 8, minor: 6 });
    const T4: ReplicaHost = ReplicaHost::Gpu(ComputeCapability { major: 7, minor: 5 });

    fn fixture_dir(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    fn fixture(name: &str) -> Checkpoint {
        Checkpoint::open(fixture_dir(name)).expect("fixture opens")
    }

    fn spec(backend: BackendKind, quantization: Quantization) -> DeploymentSpec {
        DeploymentSpec::example("g5.xlarge", backend, quantization)
    }

    fn candle() -> DeploymentSpec {
        spec(BackendKind::Candle, Quantization::Default)
    }

    #[test]
    fn gpt2_on_the_cpu_needs_its_f32_weights_and_a_full_context_cache() {
        let need = estimate(Some(&fixture("gpt2-tiny")), &candle(), ReplicaHost::Cpu);
        // The fixture is saved in f32, so its tensors' bytes are the weights' size.
        let file = std::fs::metadata(fixture_dir("gpt2-tiny/model.safetensors"))
            .unwrap()
            .len();
        assert!(need.weights_bytes <= file && need.weights_bytes > file * 9 / 10);
        // 2 (K and V) × 2 layers × 128 positions × 32 wide × 4 bytes.
        assert_eq!(need.kv_bytes_per_slot, 2 * 2 * 128 * 32 * 4);
    }

    #[test]
    fn t5_counts_cross_attention_too() {
        let need = estimate(Some(&fixture("t5-tiny")), &candle(), ReplicaHost::Cpu);
        // 2 × 2 decoder layers × (512 new + 512 prompt positions) × 32 wide × 4 bytes.
        assert_eq!(need.kv_bytes_per_slot, 2 * 2 * 1024 * 32 * 4);
        assert!(need.weights_bytes > 0);
    }

    #[test]
    fn candle_on_a_gpu_counts_its_half_precision() {
        let cpu = estimate(Some(&fixture("gpt2-tiny")), &candle(), ReplicaHost::Cpu);
        // bf16 on sm 8.6; f16 for GPT-2 on sm 7.5.
        for gpu in [A10G, T4] {
            let need = estimate(Some(&fixture("gpt2-tiny")), &candle(), gpu);
            assert_eq!(need.weights_bytes * 2, cpu.weights_bytes, "{gpu:?}");
            assert_eq!(need.kv_bytes_per_slot * 2, cpu.kv_bytes_per_slot, "{gpu:?}");
        }
        // T5 keeps f32 on a T4 (its activations overflow float16).
        let t5_cpu = estimate(Some(&fixture("t5-tiny")), &candle(), ReplicaHost::Cpu);
        assert_eq!(estimate(Some(&fixture("t5-tiny")), &candle(), T4), t5_cpu);
    }

    #[test]
    fn ctranslate2_int8_weights_take_a_byte_each_with_the_effective_activations() {
        let cpu = estimate(Some(&fixture("gpt2-tiny")), &candle(), ReplicaHost::Cpu);
        let int8 = spec(BackendKind::Ctranslate2, Quantization::Int8Float16);
        // int8_float16 on an A10G: 1-byte weights, 2-byte caches.
        let gpu = estimate(Some(&fixture("gpt2-tiny")), &int8, A10G);
        assert_eq!(gpu.weights_bytes * 4, cpu.weights_bytes);
        assert_eq!(gpu.kv_bytes_per_slot * 2, cpu.kv_bytes_per_slot);
        // On the CPU it runs int8_float32: 1-byte weights, f32 caches.
        let on_cpu = estimate(Some(&fixture("gpt2-tiny")), &int8, ReplicaHost::Cpu);
        assert_eq!(on_cpu.weights_bytes * 4, cpu.weights_bytes);
        assert_eq!(on_cpu.kv_bytes_per_slot, cpu.kv_bytes_per_slot);
        // No quantization: float32 throughout.
        let float = spec(BackendKind::Ctranslate2, Quantization::NoQuantization);
        assert_eq!(estimate(Some(&fixture("gpt2-tiny")), &float, A10G), cpu);
    }

    #[test]
    fn candle_int8_weights_take_a_byte_each_beside_the_float32_embedding_table() {
        let model = fixture("gpt2-tiny");
        let cpu = estimate(Some(&model), &candle(), ReplicaHost::Cpu);
        let int8 = spec(BackendKind::Candle, Quantization::Int8Float16);
        let need = estimate(Some(&model), &int8, ReplicaHost::Cpu);
        // One byte per parameter, plus the 50,257 × 32 f32 table the lookup reads.
        assert_eq!(need.weights_bytes, cpu.weights_bytes / 4 + 50_257 * 32 * 4);
        assert_eq!(need.kv_bytes_per_slot, cpu.kv_bytes_per_slot);
    }

    #[test]
    fn a_directory_without_a_model_needs_nothing_known() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            estimate(
                Checkpoint::open(dir.path()).ok().as_ref(),
                &candle(),
                ReplicaHost::Cpu
            ),
            MemoryNeed::UNKNOWN
        );
    }
}
