//! `gelu_new` (GELU, tanh approximation) fused into one pass for f32 on the CPU.
//!
//! candle's CPU `gelu` evaluates `tanhf` per element, which on a decode batch costs more than
//! the MLP matmul it follows (docs/benchmarks.md). The identity
//! `0.5 x (1 + tanh(u)) = x / (1 + exp(-2u))`, `u = sqrt(2/π) (x + 0.044715 x³)`, needs one
//! `expf` instead, and is the same function (it even avoids the cancellation in `1 + tanh(u)`
//! for very negative `u`). Other devices and dtypes use candle's own kernel.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// `2 · sqrt(2/π)`.
const TWO_SQRT_2_OVER_PI: f32 = 1.595_769_2;
const CUBIC: f32 = 0.044_715;

pub(crate) fn gelu_tanh(xs: &Tensor) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == DType::F32 {
        xs.contiguous()?.apply_op1_no_bwd(&FusedGeluTanh)
    } else {
        xs.gelu()
    }
}

struct FusedGeluTanh;

impl CustomOp1 for FusedGeluTanh {
    fn name(&self) -> &'static str {
        "fused-gelu-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("fused-gelu-tanh takes a contiguous f32 tensor");
        };
        let out: Vec<f32> = data[start..end]
            .iter()
            .map(|&x| x / (1.0 + (-TWO_SQRT_2_OVER_PI * (x + CUBIC * x * x * x)).exp()))
            .collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::gelu_tanh;

    #[test]
    fn fused_gelu_equals_the_tanh_formula() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 200.0).collect();
        let tensor = Tensor::new(xs.as_slice(), &Device::Cpu).expect("tensor");
        let fused: Vec<f32> = gelu_tanh(&tensor).expect("gelu").to_vec1().expect("vec");
        for (x, got) in xs.iter().map(|&x| f64::from(x)).zip(fused) {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            let expected = 0.5 * x * (1.0 + u.tanh());
            assert!(
                (f64::from(got) - expected).abs() <= 1e-6 * (1.0 + x.abs()),
                "x = {x}"
            );
        }
    }
}
