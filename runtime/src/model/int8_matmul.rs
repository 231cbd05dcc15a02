//! `x · Wᵀ` on the CPU with int8 weights (`quantizationType: int8_float16` on candle,
//! docs/models.md § int8 weights): `W` `[out, in]` is quantized once, at load, to int8 with
//! one f32 scale per output row (as CTranslate2 quantizes its int8 weights); each input row
//! is quantized on the fly, per row, to int8 (as CTranslate2's and oneDNN's int8 GEMMs do
//! with their activations); the row-by-row dot products are exact integer sums, scaled back
//! to f32. Everything around the products — norms, attention, activations, biases, logits —
//! stays f32.
//!
//! At one decode row the product reads weights from memory, and int8 weights are a quarter
//! of f32's bytes; with 16 rows it is arithmetic, and AVX-512 VNNI's `vpdpbusd` does 32
//! multiply-adds per instruction where f32 FMA does 8. The loops mirror
//! [`super::skinny_matmul`]: weight rows read once, in four long sequential streams (rows a
//! quarter-block apart), dotted with up to three input rows while they sit in L1, output
//! columns spread over the thread pool.
//!
//! Three kernels, chosen at run time: AVX-512 VNNI (256-bit `vpdpbusd` on the input offset
//! to unsigned, corrected by the weight row's sum), AVX2 (the sign trick: `vpsignb`, then
//! `vpmaddubsw` + `vpmaddwd`, which cannot saturate with both operands within ±127), and a
//! portable loop. Integer sums are exact, so all three give the same integer for every
//! element and the same f32 after the one fixed scaling `(sum · scale_w) · scale_x`: a
//! row's result is bit for bit the same on every kernel and whatever else is in the batch.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::skinny_matmul::huge_pages;

/// Bytes per inner step of the kernels: the length every row is zero-padded to a multiple of.
const STEP: usize = 32;

/// Weight rows per parallel task: 128 rows of 768 int8 are 96 KiB.
const ROWS_PER_TASK: usize = 128;

/// Symmetric int8 range: -128 is left out so that negating a value (the AVX2 sign trick)
/// stays in range.
const Q_MAX: f32 = 127.0;

/// A weight matrix `[outs, inner]` in int8, one scale per row.
pub(crate) struct Int8Matrix {
    /// `[outs, padded]`, each row zero-padded to a multiple of [`STEP`]; starts 64-aligned
    /// at `start`.
    values: Vec<i8>,
    start: usize,
    /// `w[o][k] ≈ values[o][k] · scales[o]`.
    scales: Vec<f32>,
    /// Each row's sum of values: the correction for the VNNI kernel's unsigned offset.
    sums: Vec<i32>,
    outs: usize,
    inner: usize,
    padded: usize,
}

impl Int8Matrix {
    /// Quantizes `w` (`[outs, inner]`, row-major): each row to `round(w / s)` with
    /// `s = max |w| / 127` (a zero row keeps scale 0).
    pub(crate) fn quantize(w: &[f32], outs: usize, inner: usize) -> Self {
        assert_eq!(w.len(), outs * inner, "weight length is outs × inner");
        let padded = inner.div_ceil(STEP) * STEP;
        let mut values: Vec<i8> = Vec::with_capacity(outs * padded + 64);
        huge_pages(&values);
        let start = values.as_ptr().align_offset(64);
        values.resize(start + outs * padded, 0);
        let mut scales = vec![0f32; outs];
        let mut sums = vec![0i32; outs];
        values[start..]
            .par_chunks_mut(padded)
            .zip(w.par_chunks(inner))
            .zip(scales.par_iter_mut().zip(sums.par_iter_mut()))
            .for_each(|((row, weights), (scale, sum))| {
                *scale = quantize_row(weights, &mut row[..inner]);
                *sum = row.iter().map(|&q| i32::from(q)).sum();
            });
        Self {
            values,
            start,
            scales,
            sums,
            outs,
            inner,
            padded,
        }
    }

    fn rows(&self) -> &[i8] {
        &self.values[self.start..]
    }

    /// Row `o` dequantized (tests and the accuracy measurements).
    #[cfg(test)]
    fn dequantized_row(&self, o: usize) -> Vec<f32> {
        let row = &self.rows()[o * self.padded..o * self.padded + self.inner];
        row.iter().map(|&q| f32::from(q) * self.scales[o]).collect()
    }

    /// `x` `[rows, inner]` · `W`ᵀ → `[rows, outs]`, row-major.
    pub(crate) fn matmul(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.inner, "input length is rows × inner");
        if rows == 0 || self.outs == 0 {
            return vec![0f32; rows * self.outs];
        }
        let kernel = Kernel::detect();
        let inputs = QuantizedRows::new(x, rows, self.inner, self.padded, kernel);
        // Computed transposed (`[outs, rows]`, each task owning a contiguous block), then
        // turned around; the buffer is reused per thread, as a fresh few MiB (the head's)
        // cost page faults and zeroing on every call.
        let mut scratch = SCRATCH.with(|s| s.take());
        scratch.clear();
        scratch.resize(self.outs * rows, 0.0);
        let mut transposed = scratch;
        transposed
            .par_chunks_mut(ROWS_PER_TASK * rows)
            .enumerate()
            .for_each(|(task, block)| {
                let first = task * ROWS_PER_TASK;
                let count = block.len() / rows;
                let weights = WeightBlock {
                    values: &self.rows()[first * self.padded..(first + count) * self.padded],
                    sums: &self.sums[first..first + count],
                    padded: self.padded,
                };
                let mut sums = vec![0i32; count * rows];
                kernel.integer_block(&inputs, &weights, &mut sums);
                for (o, (out, sums)) in block
                    .chunks_exact_mut(rows)
                    .zip(sums.chunks_exact(rows))
                    .enumerate()
                {
                    let scale = self.scales[first + o];
                    for ((value, &sum), &x_scale) in out.iter_mut().zip(sums).zip(&inputs.scales) {
                        *value = sum as f32 * scale * x_scale;
                    }
                }
            });
        let mut out = vec![0f32; rows * self.outs];
        out.par_chunks_mut(self.outs)
            .enumerate()
            .for_each(|(r, row)| {
                for (value, column) in row.iter_mut().zip(transposed.chunks_exact(rows)) {
                    *value = column[r];
                }
            });
        SCRATCH.with(|s| s.replace(transposed));
        out
    }
}

thread_local! {
    /// [`Int8Matrix::matmul`]'s transposed result, kept for the thread's next call (taken
    /// out while in use, so a nested call on the same thread just allocates its own).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Writes `w / s` rounded to nearest even (CTranslate2's and numpy's rounding) into `q` and
/// returns `s = max |w| / 127` (0 for a zero row; NaN when `w` holds a non-finite value,
/// which then reaches the product's result rather than vanishing into a zero).
fn quantize_row(w: &[f32], q: &mut [i8]) -> f32 {
    if w.iter().any(|v| !v.is_finite()) {
        q.fill(0);
        return f32::NAN;
    }
    let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let inverse = Q_MAX / max;
    for (q, &v) in q.iter_mut().zip(w) {
        *q = round_ties_even((v * inverse).clamp(-Q_MAX, Q_MAX)) as i8;
    }
    max / Q_MAX
}

/// `v.round_ties_even()` for |v| ≤ 2²² by the 1.5 · 2²³ trick: adding it leaves no fraction
/// bits, so the addition itself rounds to nearest even. `f32::round_ties_even` is a libm
/// call on baseline x86-64 (no SSE4.1 `roundps`): 11 % of an int8 decode step, per element.
#[inline]
fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// The input rows quantized for one product: signed values, and what the kernel in use
/// reads besides — their magnitudes (AVX2) or the values offset by 128 as unsigned bytes
/// (VNNI); empty for the other kernels.
struct QuantizedRows {
    signed: Vec<i8>,
    magnitudes: Vec<u8>,
    offset: Vec<u8>,
    scales: Vec<f32>,
    rows: usize,
    padded: usize,
}

impl QuantizedRows {
    fn new(x: &[f32], rows: usize, inner: usize, padded: usize, kernel: Kernel) -> Self {
        let mut signed = vec![0i8; rows * padded];
        let scales: Vec<f32> = signed
            .chunks_exact_mut(padded)
            .zip(x.chunks_exact(inner))
            .map(|(q, x)| quantize_row(x, &mut q[..inner]))
            .collect();
        let (mut magnitudes, mut offset) = (Vec::new(), Vec::new());
        match kernel {
            Kernel::Portable => {}
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => magnitudes = signed.iter().map(|q| q.unsigned_abs()).collect(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => offset = signed.iter().map(|&q| (q as u8) ^ 0x80).collect(),
        }
        Self {
            signed,
            magnitudes,
            offset,
            scales,
            rows,
            padded,
        }
    }
}

/// One task's weight rows.
struct WeightBlock<'a> {
    values: &'a [i8],
    sums: &'a [i32],
    padded: usize,
}

impl WeightBlock<'_> {
    fn count(&self) -> usize {
        self.values.len() / self.padded
    }

    fn row(&self, o: usize) -> &[i8] {
        &self.values[o * self.padded..(o + 1) * self.padded]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Kernel::Vnni;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU can run (tests compare them).
    #[cfg(test)]
    fn available() -> Vec<Self> {
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(Kernel::Avx2);
            }
            if Kernel::detect() == Kernel::Vnni {
                kernels.push(Kernel::Vnni);
            }
        }
        kernels
    }

    /// `sums[o * rows + r]` = the exact integer dot of weight row `o` and input row `r`.
    fn integer_block(self, inputs: &QuantizedRows, weights: &WeightBlock<'_>, sums: &mut [i32]) {
        match self {
            Kernel::Portable => portable_block(inputs, weights, sums),
            // SAFETY: `detect` chose these only on CPUs with the features they enable.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::avx2_block(inputs, weights, sums) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { x86::vnni_block(inputs, weights, sums) },
        }
    }
}

fn portable_block(inputs: &QuantizedRows, weights: &WeightBlock<'_>, sums: &mut [i32]) {
    let rows = inputs.rows;
    for o in 0..weights.count() {
        let w = weights.row(o);
        for (r, x) in inputs.signed.chunks_exact(inputs.padded).enumerate() {
            sums[o * rows + r] = w
                .iter()
                .zip(x)
                .map(|(&w, &x)| i32::from(w) * i32::from(x))
                .sum();
        }
    }
}

/// How many of the `remaining` input rows the next pass takes (see
/// `skinny_matmul::avx2::group_size`).
fn group_size(remaining: usize) -> usize {
    match remaining {
        4 => 2,
        n => n.min(3),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{group_size, QuantizedRows, WeightBlock, STEP};

    // Plain functions and loops throughout, no closures: a closure would not inherit the
    // target features, and its intrinsics would become calls. Hence a macro for the walk
    // both kernels share.

    /// Walks a block of weight rows as the f32 kernel does: four rows a quarter-block apart
    /// (four long sequential streams) against up to three input rows per `$pass`, then the
    /// weight rows left over one at a time.
    macro_rules! walk_block {
        ($pass:ident, $inputs:expr, $weights:expr, $sums:expr) => {{
            let (inputs, weights, sums) = ($inputs, $weights, $sums);
            let (rows, outs) = (inputs.rows, weights.count());
            let quarter = outs / 4;
            for o in 0..quarter {
                let picked = [o, o + quarter, o + 2 * quarter, o + 3 * quarter];
                let mut r = 0;
                while r < rows {
                    let size = group_size(rows - r);
                    match size {
                        3 => $pass::<4, 3>(inputs, weights, picked, r, sums),
                        2 => $pass::<4, 2>(inputs, weights, picked, r, sums),
                        _ => $pass::<4, 1>(inputs, weights, picked, r, sums),
                    }
                    r += size;
                }
            }
            for o in 4 * quarter..outs {
                for r in 0..rows {
                    $pass::<1, 1>(inputs, weights, [o], r, sums);
                }
            }
        }};
    }

    /// The sign trick: `|x| · (w · sign x)` in `vpmaddubsw` (unsigned × signed, pairs summed
    /// into i16 — at most 2 · 127 · 127, no saturation), then pairs of those into i32.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2_block(
        inputs: &QuantizedRows,
        weights: &WeightBlock<'_>,
        sums: &mut [i32],
    ) {
        walk_block!(avx2_pass, inputs, weights, sums);
    }

    /// Weight rows `picked` against input rows `r..r + R`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn avx2_pass<const W: usize, const R: usize>(
        inputs: &QuantizedRows,
        weights: &WeightBlock<'_>,
        picked: [usize; W],
        r: usize,
        sums: &mut [i32],
    ) {
        let (rows, padded) = (inputs.rows, weights.padded);
        // Row starts resolved once: slicing inside the loop cost a bounds check per load.
        let w_rows = picked.map(|o| weights.row(o).as_ptr());
        let magnitudes = inputs.magnitudes[r * padded..(r + R) * padded].as_ptr();
        let signs = inputs.signed[r * padded..(r + R) * padded].as_ptr();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); R]; W];
        let mut k = 0;
        while k < padded {
            let mut magnitude = [_mm256_setzero_si256(); R];
            let mut signed = [_mm256_setzero_si256(); R];
            for i in 0..R {
                magnitude[i] = _mm256_loadu_si256(magnitudes.add(i * padded + k).cast());
                signed[i] = _mm256_loadu_si256(signs.add(i * padded + k).cast());
            }
            for j in 0..W {
                let w = _mm256_loadu_si256(w_rows[j].add(k).cast());
                for i in 0..R {
                    let pairs = _mm256_maddubs_epi16(magnitude[i], _mm256_sign_epi8(w, signed[i]));
                    acc[j][i] = _mm256_add_epi32(acc[j][i], _mm256_madd_epi16(pairs, ones));
                }
            }
            k += STEP;
        }
        for j in 0..W {
            for i in 0..R {
                sums[picked[j] * rows + r + i] = lanes_sum(acc[j][i]);
            }
        }
    }

    /// `vpdpbusd` takes unsigned × signed bytes: the inputs are offset by 128 into unsigned
    /// bytes, and `128 · Σ w` (the row's sum, kept at quantization) taken off the result.
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    pub(super) unsafe fn vnni_block(
        inputs: &QuantizedRows,
        weights: &WeightBlock<'_>,
        sums: &mut [i32],
    ) {
        walk_block!(vnni_pass, inputs, weights, sums);
    }

    /// Weight rows `picked` against input rows `r..r + R`.
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    #[inline]
    unsafe fn vnni_pass<const W: usize, const R: usize>(
        inputs: &QuantizedRows,
        weights: &WeightBlock<'_>,
        picked: [usize; W],
        r: usize,
        sums: &mut [i32],
    ) {
        let (rows, padded) = (inputs.rows, weights.padded);
        // Row starts resolved once: slicing inside the loop cost a bounds check per load.
        let w_rows = picked.map(|o| weights.row(o).as_ptr());
        let xs = inputs.offset[r * padded..(r + R) * padded].as_ptr();
        let mut acc = [[_mm256_setzero_si256(); R]; W];
        let mut k = 0;
        while k < padded {
            // Indexed, not iterated: an iterator over the array kept it on the stack.
            let mut x = [_mm256_setzero_si256(); R];
            #[allow(clippy::needless_range_loop)]
            for i in 0..R {
                x[i] = _mm256_loadu_si256(xs.add(i * padded + k).cast());
            }
            for j in 0..W {
                let w = _mm256_loadu_si256(w_rows[j].add(k).cast());
                for i in 0..R {
                    acc[j][i] = _mm256_dpbusd_epi32(acc[j][i], x[i], w);
                }
            }
            k += STEP;
        }
        for j in 0..W {
            let correction = 128 * weights.sums[picked[j]];
            for i in 0..R {
                sums[picked[j] * rows + r + i] = lanes_sum(acc[j][i]) - correction;
            }
        }
    }

    /// The eight i32 lanes of `v` added up (exact: any order gives the same integer).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn lanes_sum(v: __m256i) -> i32 {
        let quads = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let pairs = _mm_add_epi32(quads, _mm_shuffle_epi32::<0b01_00_11_10>(quads));
        let one = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs));
        _mm_cvtsi128_si32(one)
    }
}

/// `xs` `[rows, inner]` (CPU, f32) · `matrix`ᵀ → `[rows, outs]`.
pub(crate) fn matmul_int8(xs: &Tensor, matrix: &Int8Matrix) -> Result<Tensor> {
    xs.contiguous()?.apply_op1_no_bwd(&Int8Product(matrix))
}

struct Int8Product<'a>(&'a Int8Matrix);

impl CustomOp1 for Int8Product<'_> {
    fn name(&self) -> &'static str {
        "int8-matmul-wt"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(xs), Some((start, end))) = (xs, layout.contiguous_offsets()) else {
            candle_core::bail!("int8-matmul-wt takes a contiguous f32 tensor");
        };
        let (rows, inner) = layout.shape().dims2()?;
        let matrix = self.0;
        if inner != matrix.inner {
            candle_core::bail!(
                "int8-matmul-wt: x is [{rows}, {inner}] but W is [{}, {}]",
                matrix.outs,
                matrix.inner
            );
        }
        let out = matrix.matmul(&xs[start..end], rows);
        Ok((CpuStorage::F32(out), Shape::from((rows, matrix.outs))))
    }
}

/// Whether a tensor can be quantized for [`Int8Matrix`]: the kernels run on the CPU in f32.
pub(crate) fn quantizable(weight: &Tensor) -> bool {
    weight.device().is_cpu() && weight.dtype() == DType::F32 && weight.rank() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.618).sin()).collect()
    }

    /// The documented product, written out independently of the kernels.
    fn reference(matrix: &Int8Matrix, x: &[f32], rows: usize) -> Vec<f32> {
        let (inner, padded) = (matrix.inner, matrix.padded);
        let mut out = vec![0f32; rows * matrix.outs];
        for r in 0..rows {
            let mut q = vec![0i8; padded];
            let x_scale = quantize_row(&x[r * inner..(r + 1) * inner], &mut q[..inner]);
            for o in 0..matrix.outs {
                let w = &matrix.rows()[o * padded..(o + 1) * padded];
                let sum: i32 = w
                    .iter()
                    .zip(&q)
                    .map(|(&a, &b)| i32::from(a) * i32::from(b))
                    .sum();
                out[r * matrix.outs + o] = sum as f32 * matrix.scales[o] * x_scale;
            }
        }
        out
    }

    fn with_kernel(matrix: &Int8Matrix, x: &[f32], rows: usize, kernel: Kernel) -> Vec<f32> {
        let inputs = QuantizedRows::new(x, rows, matrix.inner, matrix.padded, kernel);
        let weights = WeightBlock {
            values: matrix.rows(),
            sums: &matrix.sums,
            padded: matrix.padded,
        };
        let mut sums = vec![0i32; matrix.outs * rows];
        kernel.integer_block(&inputs, &weights, &mut sums);
        let mut out = vec![0f32; rows * matrix.outs];
        for o in 0..matrix.outs {
            for r in 0..rows {
                out[r * matrix.outs + o] =
                    sums[o * rows + r] as f32 * matrix.scales[o] * inputs.scales[r];
            }
        }
        out
    }

    #[test]
    fn every_kernel_gives_the_reference_bits_for_odd_shapes() {
        // Shapes leaving every remainder: rows not a multiple of 3, outs not of 4, inner
        // not of 32 (padded), and more rows than one decode batch.
        for (rows, outs, inner) in [
            (1, 1, 1),
            (3, 5, 7),
            (2, 130, 24),
            (16, 67, 768),
            (7, 9, 33),
            (40, 13, 100),
        ] {
            let matrix = Int8Matrix::quantize(&values(outs * inner, 2.0), outs, inner);
            let x = values(rows * inner, 1.0);
            let expected = reference(&matrix, &x, rows);
            assert_eq!(
                matrix.matmul(&x, rows),
                expected,
                "{rows}x{outs}x{inner}: in use"
            );
            for kernel in Kernel::available() {
                assert_eq!(
                    with_kernel(&matrix, &x, rows, kernel),
                    expected,
                    "{rows}x{outs}x{inner}: {kernel:?}"
                );
            }
        }
    }

    #[test]
    fn the_vnni_kernel_runs_where_the_cpu_has_it() {
        // On this project's benchmark machines (AVX-512 VNNI) the fast kernel must be the
        // one in use; elsewhere this says which one is.
        let kernels = Kernel::available();
        assert_eq!(Kernel::detect(), *kernels.last().unwrap());
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_among_others() {
        let (outs, inner) = (70, 100);
        let matrix = Int8Matrix::quantize(&values(outs * inner, 3.0), outs, inner);
        let batch = values(9 * inner, 4.0);
        let together = matrix.matmul(&batch, 9);
        for r in 0..9 {
            let alone = matrix.matmul(&batch[r * inner..(r + 1) * inner], 1);
            assert_eq!(alone, together[r * outs..(r + 1) * outs], "row {r}");
        }
    }

    #[test]
    fn the_product_is_close_to_the_f32_product() {
        // Per-row int8 on both sides: each element within 0.1 % of the sum of the
        // magnitudes of its products.
        let (rows, outs, inner) = (4, 50, 768);
        let w = values(outs * inner, 5.0);
        let x = values(rows * inner, 6.0);
        let matrix = Int8Matrix::quantize(&w, outs, inner);
        let got = matrix.matmul(&x, rows);
        for r in 0..rows {
            for o in 0..outs {
                let products = (0..inner).map(|k| x[r * inner + k] * w[o * inner + k]);
                let exact: f32 = products.clone().sum();
                let magnitude: f32 = products.map(f32::abs).sum();
                let error = (got[r * outs + o] - exact).abs();
                assert!(
                    error < 1e-3 * magnitude,
                    "row {r} out {o}: {} vs {exact}",
                    got[r * outs + o]
                );
            }
        }
    }

    #[test]
    fn quantization_keeps_each_weight_within_half_a_step() {
        let (outs, inner) = (5, 40);
        let w = values(outs * inner, 7.0);
        let matrix = Int8Matrix::quantize(&w, outs, inner);
        for o in 0..outs {
            let step = matrix.scales[o];
            for (q, w) in matrix.dequantized_row(o).iter().zip(&w[o * inner..]) {
                assert!((q - w).abs() <= step / 2.0 + 1e-7, "{q} vs {w}");
            }
        }
    }

    #[test]
    fn the_rounding_is_to_nearest_even_like_the_standard_librarys() {
        for i in -2540..=2540 {
            let v = i as f32 / 20.0;
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
        for v in [
            0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5, 0.49999997, 126.99999,
        ] {
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
    }

    #[test]
    fn zero_and_non_finite_rows() {
        let matrix = Int8Matrix::quantize(&[0.0, 0.0, 1.0, -1.0], 2, 2);
        assert_eq!(matrix.matmul(&[0.0, 0.0], 1), vec![0.0, 0.0]);
        assert!(matrix
            .matmul(&[f32::NAN, 1.0], 1)
            .iter()
            .all(|v| v.is_nan()));
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore = "a measurement: cargo test -p runtime --lib int8_speed -- --ignored --nocapture"]
    fn int8_speed() {
        for (rows, outs, inner) in [
            (1, 2304, 768),
            (16, 2304, 768),
            (256, 2304, 768),
            (16, 50257, 768),
        ] {
            let w: Vec<f32> = (0..outs * inner)
                .map(|i| ((i as f32) * 0.37).sin())
                .collect();
            let x: Vec<f32> = (0..rows * inner)
                .map(|i| ((i as f32) * 0.11).cos())
                .collect();
            let m = Int8Matrix::quantize(&w, outs, inner);
            let mut best = f64::MAX;
            for _ in 0..20 {
                let t = std::time::Instant::now();
                std::hint::black_box(m.matmul(&x, rows));
                best = best.min(t.elapsed().as_secs_f64());
            }
            let macs = (rows * outs * inner) as f64;
            eprintln!(
                "{rows}x{outs}x{inner}: {:.3} ms, {:.1} GMAC/s, weights {:.1} GB/s",
                best * 1e3,
                macs / best / 1e9,
                (outs * inner) as f64 / best / 1e9
            );
        }
    }
}
