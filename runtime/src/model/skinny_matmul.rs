//! `x · Wᵀ` on the CPU in f32 for the few rows of a decode step (`x` `[rows, in]`, `W` the
//! contiguous `[out, in]` weight every projection here keeps).
//!
//! candle's CPU matmul (the `gemm` crate) repacks the whole right-hand side into panels on
//! every call. With 16 rows that repacking costs more than the arithmetic: a batched GPT-2
//! small step spent ~40 % of its time in gemm's packing and only ~25 % in its FMA kernel
//! (perf, docs/benchmarks.md). Here each weight row is read once, straight from the
//! checkpoint's layout, and dotted with every row of `x` while it sits in L1: four weight
//! rows × three input rows per pass, twelve AVX2 FMA accumulators. The four rows of a pass
//! are a quarter of the task's block apart, so the kernel reads four long sequential
//! streams rather than four 3 KiB ones that end and restart every pass: the hardware
//! prefetcher keeps up, and one decode row reads weights 1.6× as fast (docs/benchmarks.md).
//! Output columns are
//! spread over the thread pool. Every output element is computed the same way whatever the number
//! of rows, so a sequence's logits do not depend on the rest of its batch.
//!
//! The kernel wants its operands on 32-byte boundaries: a misaligned 32-byte load straddles
//! two cache lines every other time, which cost 15–45 % of the kernel's speed here
//! (docs/benchmarks.md). Weights are copied to 64-byte boundaries once, at load
//! ([`aligned`]), on transparent huge pages where the kernel allows them (a 4 KiB page is a
//! TLB miss every 4 KiB of a stream); the few input rows are copied when they are not.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Up to this many rows (a decode batch, a short prompt) this kernel beats gemm on weights
/// streamed from memory; longer packed prefills go to gemm, whose packing pays off there.
pub(crate) const MAX_ROWS: usize = 32;

/// Weight rows per parallel task: 64 rows of 768 f32 are 192 KiB, a share of L2.
const ROWS_PER_TASK: usize = 64;

/// `xs` `[rows, in]` · `weight` `[out, in]`ᵀ → `[rows, out]`.
pub(crate) fn matmul_wt(xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let fits = xs.device().is_cpu()
        && xs.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && xs.rank() == 2
        && xs.dim(0)? <= MAX_ROWS
        && weight.is_contiguous();
    if fits {
        xs.contiguous()?.apply_op2_no_bwd(weight, &SkinnyMatmul)
    } else {
        xs.matmul(&weight.t()?)
    }
}

/// `weight` as a CPU f32 tensor whose data starts on a 64-byte boundary, for [`matmul_wt`];
/// other devices and dtypes are returned as they are.
pub(crate) fn aligned(weight: Tensor) -> Result<Tensor> {
    if !weight.device().is_cpu() || weight.dtype() != DType::F32 || starts_aligned(&weight) {
        return Ok(weight);
    }
    let values = weight.flatten_all()?.to_vec1::<f32>()?;
    let (padded, start) = aligned_copy(&values);
    Tensor::from_vec(padded, start + values.len(), &Device::Cpu)?
        .narrow(0, start, values.len())?
        .reshape(weight.shape())
}

/// Whether `weight` is contiguous CPU f32 data starting on a 64-byte boundary already (a
/// tied head reading the embedding table it shares).
fn starts_aligned(weight: &Tensor) -> bool {
    let (storage, layout) = weight.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(CpuStorage::F32(data)), Some((start, _))) => {
            data[start..].as_ptr().align_offset(64) == 0
        }
        _ => false,
    }
}

/// `values` copied into a vector where they start, at index `.1`, on a 64-byte boundary.
fn aligned_copy(values: &[f32]) -> (Vec<f32>, usize) {
    const ALIGN: usize = 64;
    let mut padded: Vec<f32> = Vec::with_capacity(values.len() + ALIGN / 4);
    huge_pages(&padded);
    let start = padded.as_ptr().align_offset(ALIGN);
    padded.resize(start, 0.0);
    padded.extend_from_slice(values);
    (padded, start)
}

/// Asks Linux for transparent huge pages over the whole 2 MiB pages inside `v`'s (still
/// untouched) capacity. Only a hint: with THP `never`, or elsewhere, nothing changes.
pub(super) fn huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let begin = v.as_ptr() as usize;
        let end = begin + v.capacity() * std::mem::size_of::<T>();
        let first = begin.div_ceil(HUGE) * HUGE;
        let last = end / HUGE * HUGE;
        if last > first {
            // SAFETY: the range lies inside `v`'s own allocation; MADV_HUGEPAGE changes
            // how its pages are backed, never their contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

struct SkinnyMatmul;

impl CustomOp2 for SkinnyMatmul {
    fn name(&self) -> &'static str {
        "skinny-matmul-wt"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (
            CpuStorage::F32(xs),
            CpuStorage::F32(weight),
            Some((xs_start, xs_end)),
            Some((w_start, w_end)),
        ) = (
            xs,
            weight,
            xs_layout.contiguous_offsets(),
            weight_layout.contiguous_offsets(),
        )
        else {
            candle_core::bail!("skinny-matmul-wt takes contiguous f32 tensors");
        };
        let (rows, inner) = xs_layout.shape().dims2()?;
        let (outs, weight_inner) = weight_layout.shape().dims2()?;
        if inner != weight_inner {
            candle_core::bail!(
                "skinny-matmul-wt: x is [{rows}, {inner}] but W is [{outs}, {weight_inner}]"
            );
        }
        let out = matmul_wt_f32(
            &xs[xs_start..xs_end],
            rows,
            &weight[w_start..w_end],
            outs,
            inner,
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, outs))))
    }
}

/// `x` `[rows, inner]` · `w` `[outs, inner]`ᵀ, row-major, → `[rows, outs]`.
fn matmul_wt_f32(x: &[f32], rows: usize, w: &[f32], outs: usize, inner: usize) -> Vec<f32> {
    if rows == 0 || outs == 0 || inner == 0 {
        return vec![0f32; rows * outs];
    }
    let copy;
    let x = if x.as_ptr().align_offset(32) == 0 {
        x
    } else {
        copy = aligned_copy(x);
        &copy.0[copy.1..]
    };
    // Computed transposed (`[outs, rows]`), so each task owns a contiguous block of the
    // output, then turned around: a few hundred KiB at most, against tens of MiB of weights.
    let mut transposed = vec![0f32; outs * rows];
    transposed
        .par_chunks_mut(ROWS_PER_TASK * rows)
        .enumerate()
        .for_each(|(task, block)| {
            let first = task * ROWS_PER_TASK;
            let weights = &w[first * inner..(first + block.len() / rows) * inner];
            weight_block(x, rows, weights, inner, block);
        });
    let mut out = vec![0f32; rows * outs];
    out.par_chunks_mut(outs).enumerate().for_each(|(r, row)| {
        for (value, column) in row.iter_mut().zip(transposed.chunks_exact(rows)) {
            *value = column[r];
        }
    });
    out
}

/// `out[o * rows + r] = dot(weights row o, x row r)` for every weight row of `weights`.
fn weight_block(x: &[f32], rows: usize, weights: &[f32], inner: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { avx2::weight_block(x, rows, weights, inner, out) };
        return;
    }
    for (o, weight_row) in weights.chunks_exact(inner).enumerate() {
        for (r, x_row) in x.chunks_exact(inner).enumerate() {
            out[o * rows + r] = dot(weight_row, x_row);
        }
    }
}

/// A dot product in eight lanes, summed as the AVX2 kernel sums it (for CPUs without AVX2).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let split = a.len() / 8 * 8;
    for (a8, b8) in a[..split].chunks_exact(8).zip(b[..split].chunks_exact(8)) {
        for lane in 0..8 {
            lanes[lane] = a8[lane].mul_add(b8[lane], lanes[lane]);
        }
    }
    let mut sum = horizontal_sum(lanes);
    for (a, b) in a[split..].iter().zip(&b[split..]) {
        sum = a.mul_add(*b, sum);
    }
    sum
}

/// The eight lanes summed in a fixed tree order (the AVX2 kernel's order).
fn horizontal_sum(lanes: [f32; 8]) -> f32 {
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    let pairs = [quads[0] + quads[2], quads[1] + quads[3]];
    pairs[0] + pairs[1]
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Four weight rows against three input rows at a time (twelve accumulators, seven
    /// loads per twelve FMAs), the input rows left over two or one at a time against the
    /// same four, then weight rows left over one by one. The four rows of a pass are
    /// `outs / 4` apart: four sequential streams through the block. Every element is summed as
    /// [`super::dot`] sums it. (Prefetching the next weight rows in software made it 20–30 %
    /// slower here: the hardware prefetcher already streams them.)
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_block(
        x: &[f32],
        rows: usize,
        weights: &[f32],
        inner: usize,
        out: &mut [f32],
    ) {
        let outs = weights.len() / inner;
        let quarter = outs / 4;
        for o in 0..quarter {
            let picked = [o, o + quarter, o + 2 * quarter, o + 3 * quarter];
            let w = picked.map(|p| &weights[p * inner..(p + 1) * inner]);
            let mut r = 0;
            while r < rows {
                let size = group_size(rows - r);
                match size {
                    3 => four_by::<3>(w, x, r, rows, picked, out),
                    2 => four_by::<2>(w, x, r, rows, picked, out),
                    _ => four_by::<1>(w, x, r, rows, picked, out),
                }
                r += size;
            }
        }
        for o in 4 * quarter..outs {
            let w = &weights[o * inner..(o + 1) * inner];
            for r in 0..rows {
                out[o * rows + r] = dot(w, &x[r * inner..(r + 1) * inner]);
            }
        }
    }

    /// How many of the `remaining` input rows the next pass over a block of weight rows
    /// takes: threes, with a last four taken 2 + 2 rather than 3 + 1 (two rows make eight
    /// FMAs per six loads, one row only four per five).
    fn group_size(remaining: usize) -> usize {
        match remaining {
            4 => 2,
            n => n.min(3),
        }
    }

    /// Weight rows `w` (output rows `picked`) against input rows `r..r + R`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn four_by<const R: usize>(
        w: [&[f32]; 4],
        x: &[f32],
        r: usize,
        rows: usize,
        // The four weight rows' indices within the block (their output columns).
        picked: [usize; 4],
        out: &mut [f32],
    ) {
        let inner = w[0].len();
        let split = inner / 8 * 8;
        let x_rows = &x[r * inner..(r + R) * inner];
        let mut acc = [[_mm256_setzero_ps(); R]; 4];
        let mut k = 0;
        while k < split {
            // Plain loops, not `array::from_fn`: a closure would not inherit this
            // function's target features, and its intrinsic loads would become calls.
            let mut xs = [_mm256_setzero_ps(); R];
            for (i, xs) in xs.iter_mut().enumerate() {
                *xs = _mm256_loadu_ps(x_rows.as_ptr().add(i * inner + k));
            }
            for j in 0..4 {
                let wj = _mm256_loadu_ps(w[j].as_ptr().add(k));
                for i in 0..R {
                    acc[j][i] = _mm256_fmadd_ps(wj, xs[i], acc[j][i]);
                }
            }
            k += 8;
        }
        for j in 0..4 {
            for i in 0..R {
                let x_tail = &x_rows[i * inner + split..(i + 1) * inner];
                out[picked[j] * rows + r + i] = finish(acc[j][i], &w[j][split..], x_tail);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(w: &[f32], x: &[f32]) -> f32 {
        let split = w.len() / 8 * 8;
        let mut acc = _mm256_setzero_ps();
        let mut k = 0;
        while k < split {
            let wk = _mm256_loadu_ps(w.as_ptr().add(k));
            acc = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x.as_ptr().add(k)), acc);
            k += 8;
        }
        finish(acc, &w[split..], &x[split..])
    }

    /// Sums an accumulator's lanes in [`super::horizontal_sum`]'s order — lane i with lane
    /// i + 4, then those pairs two apart, then the last two — and adds the scalar tail.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn finish(acc: __m256, w_tail: &[f32], x_tail: &[f32]) -> f32 {
        let quads = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let pairs = _mm_add_ps(quads, _mm_movehl_ps(quads, quads));
        let one = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
        let mut sum = _mm_cvtss_f32(one);
        for (w, x) in w_tail.iter().zip(x_tail) {
            sum = w.mul_add(*x, sum);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn naive(x: &[f32], rows: usize, w: &[f32], outs: usize, inner: usize) -> Vec<f64> {
        let mut out = vec![0f64; rows * outs];
        for r in 0..rows {
            for o in 0..outs {
                out[r * outs + o] = (0..inner)
                    .map(|k| f64::from(x[r * inner + k]) * f64::from(w[o * inner + k]))
                    .sum();
            }
        }
        out
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.618).sin()).collect()
    }

    #[test]
    fn equals_the_naive_product_for_odd_shapes() {
        // Rows, outputs and inner sizes that leave every kind of remainder.
        for (rows, outs, inner) in [
            (1, 1, 1),
            (3, 5, 7),
            (2, 130, 24),
            (16, 67, 768),
            (7, 9, 33),
        ] {
            let x = values(rows * inner, 1.0);
            let w = values(outs * inner, 2.0);
            let got = matmul_wt_f32(&x, rows, &w, outs, inner);
            for (g, e) in got.iter().zip(naive(&x, rows, &w, outs, inner)) {
                assert!(
                    (f64::from(*g) - e).abs() < 1e-4,
                    "{rows}x{outs}x{inner}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_among_others() {
        let (outs, inner) = (70, 100);
        let w = values(outs * inner, 3.0);
        let batch = values(9 * inner, 4.0);
        let together = matmul_wt_f32(&batch, 9, &w, outs, inner);
        for r in 0..9 {
            let alone = matmul_wt_f32(&batch[r * inner..(r + 1) * inner], 1, &w, outs, inner);
            assert_eq!(alone, together[r * outs..(r + 1) * outs], "row {r}");
        }
    }

    /// The documented summation order, written out independently of the kernels: eight
    /// lanes, lane `j` fusing every element `k ≡ j (mod 8)` below the last full group of
    /// eight in turn, the lanes added as `((0+4)+(2+6)) + ((1+5)+(3+7))`, then the tail fused
    /// in one element at a time.
    fn reference_dot(w: &[f32], x: &[f32]) -> f32 {
        let full = w.len() - w.len() % 8;
        let lane = |j: usize| {
            (j..full)
                .step_by(8)
                .fold(0f32, |acc, k| w[k].mul_add(x[k], acc))
        };
        let l: Vec<f32> = (0..8).map(lane).collect();
        let mut sum = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        for k in full..w.len() {
            sum = w[k].mul_add(x[k], sum);
        }
        sum
    }

    #[test]
    fn every_element_is_summed_in_the_documented_order_by_both_kernels() {
        // The kernel in use (AVX2 where the CPU has it) and the portable one, each against
        // the reference, bit for bit: a CPU without AVX2 then still checks the portable one.
        let (rows, outs, inner) = (16, 37, 777);
        let x = values(rows * inner, 7.0);
        let w = values(outs * inner, 8.0);
        let got = matmul_wt_f32(&x, rows, &w, outs, inner);
        for r in 0..rows {
            let x_row = &x[r * inner..(r + 1) * inner];
            for o in 0..outs {
                let w_row = &w[o * inner..(o + 1) * inner];
                let expected = reference_dot(w_row, x_row);
                assert_eq!(
                    got[r * outs + o].to_bits(),
                    expected.to_bits(),
                    "kernel: row {r} out {o}"
                );
                assert_eq!(
                    dot(w_row, x_row).to_bits(),
                    expected.to_bits(),
                    "portable dot: row {r} out {o}"
                );
            }
        }
    }

    #[test]
    fn misaligned_input_rows_give_the_same_bits() {
        let (rows, outs, inner) = (5, 20, 64);
        let w = values(outs * inner, 9.0);
        let padded = values(rows * inner + 1, 10.0);
        let x = padded[1..].to_vec();
        let aligned_result = matmul_wt_f32(&x, rows, &w, outs, inner);
        assert_eq!(
            matmul_wt_f32(&padded[1..], rows, &w, outs, inner),
            aligned_result
        );
    }

    #[test]
    fn aligned_weights_start_on_a_cache_line_and_keep_their_values() {
        let device = Device::Cpu;
        let w = Tensor::new(values(6 * 10, 11.0), &device)
            .and_then(|t| t.reshape((6, 10)))
            .unwrap();
        let moved = aligned(w.clone()).unwrap();
        assert_eq!(moved.dims(), w.dims());
        assert!(moved.is_contiguous());
        assert_eq!(moved.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        let (storage, layout) = moved.storage_and_layout();
        let candle_core::Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            panic!("expected f32 CPU storage");
        };
        let start = layout.contiguous_offsets().unwrap().0;
        let first = data[start..].as_ptr();
        assert_eq!(first.align_offset(64), 0);
        // Aligned already (a tied head over its embedding table): shared, not copied.
        let again = aligned(moved.clone()).unwrap();
        let (storage, layout) = again.storage_and_layout();
        let candle_core::Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            panic!("expected f32 CPU storage");
        };
        let start = layout.contiguous_offsets().unwrap().0;
        assert_eq!(data[start..].as_ptr(), first);
    }

    #[test]
    fn the_op_matches_candles_matmul() {
        let device = Device::Cpu;
        let x = Tensor::new(values(5 * 48, 5.0), &device)
            .and_then(|t| t.reshape((5, 48)))
            .unwrap();
        let w = Tensor::new(values(40 * 48, 6.0), &device)
            .and_then(|t| t.reshape((40, 48)))
            .unwrap();
        let ours: Vec<Vec<f32>> = matmul_wt(&x, &w).unwrap().to_vec2().unwrap();
        let candle: Vec<Vec<f32>> = x.matmul(&w.t().unwrap()).unwrap().to_vec2().unwrap();
        for (a, b) in ours.iter().flatten().zip(candle.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
