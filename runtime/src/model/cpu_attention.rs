//! Single-query attention over many slots at once, on the CPU, straight from the caches'
//! memory.
//!
//! A decode step attends one new query per sequence over that sequence's own cache. Done
//! with tensor ops that is a dozen small ops per sequence and layer (views, two tiny
//! batched matmuls, a softmax dispatched to the thread pool), several thousand per GPT-2
//! step at batch 16, whose fixed costs outweigh their arithmetic. Here the whole batch is
//! one loop over (sequence, head) pairs, spread over the thread pool, reading the f32
//! caches in place. Each pair is computed the same way whoever else is in the batch, so
//! the result of a sequence does not depend on its company.

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};
use rayon::prelude::*;

use super::slot::KvCache;

/// Whether [`attend_slots`] can run on these queries (f32 on the CPU).
pub(crate) fn supports(queries: &Tensor) -> bool {
    queries.device().is_cpu() && queries.dtype() == DType::F32
}

/// `queries` `[b, heads, head_dim]` (already scaled), row `i` attending over the first
/// `lens[i]` positions of `caches[i]`, plus `biases[i]` (`[heads, 1, lens[i]]`, f32) when
/// given. Returns `[b, heads * head_dim]`.
pub(crate) fn attend_slots(
    queries: &Tensor,
    caches: &[&KvCache],
    lens: &[usize],
    biases: Option<&[Tensor]>,
) -> Result<Tensor> {
    let (batch, heads, head_dim) = queries.dims3()?;
    let device = queries.device().clone();
    let queries: Vec<f32> = queries.flatten_all()?.to_vec1()?;
    let biases: Option<Vec<Vec<f32>>> = biases
        .map(|biases| {
            biases
                .iter()
                .map(|b| b.flatten_all()?.to_vec1::<f32>())
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let guards: Vec<_> = caches
        .iter()
        .map(|cache| {
            let (keys, values) = cache.tensors();
            (keys.storage_and_layout(), values.storage_and_layout())
        })
        .collect();
    let memory: Vec<(HeadMajor<'_>, HeadMajor<'_>)> = guards
        .iter()
        .map(|((ks, kl), (vs, vl))| Ok((HeadMajor::new(ks, kl)?, HeadMajor::new(vs, vl)?)))
        .collect::<Result<_>>()?;

    let mut out = vec![0f32; batch * heads * head_dim];
    out.par_chunks_mut(head_dim)
        .enumerate()
        .for_each(|(row, out)| {
            let (i, head) = (row / heads, row % heads);
            let len = lens[i];
            let (keys, values) = &memory[i];
            let bias = biases.as_ref().map(|b| &b[i][head * len..(head + 1) * len]);
            attend_one(
                &queries[row * head_dim..(row + 1) * head_dim],
                keys.head(head, len, head_dim),
                values.head(head, len, head_dim),
                bias,
                out,
            );
        });
    Tensor::from_vec(out, (batch, heads * head_dim), &device)
}

/// A `[heads, capacity, head_dim]` f32 cache tensor as memory.
struct HeadMajor<'a> {
    data: &'a [f32],
    capacity: usize,
}

impl<'a> HeadMajor<'a> {
    fn new(storage: &'a Storage, layout: &Layout) -> Result<Self> {
        let Storage::Cpu(CpuStorage::F32(data)) = storage else {
            candle_core::bail!("cpu attention needs f32 caches on the CPU");
        };
        if !layout.is_contiguous() {
            candle_core::bail!("cpu attention needs contiguous caches");
        }
        let (_, capacity, _) = layout.shape().dims3()?;
        Ok(Self {
            data: &data[layout.start_offset()..],
            capacity,
        })
    }

    /// The first `len` positions of one head, `[len, head_dim]` row-major.
    fn head(&self, head: usize, len: usize, head_dim: usize) -> &'a [f32] {
        let start = head * self.capacity * head_dim;
        &self.data[start..start + len * head_dim]
    }
}

/// `out = softmax(q·kᵀ + bias) v` for one query over `keys`/`values` `[len, head_dim]`.
fn attend_one(q: &[f32], keys: &[f32], values: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let head_dim = q.len();
    let mut scores: Vec<f32> = keys.chunks_exact(head_dim).map(|k| dot(q, k)).collect();
    if let Some(bias) = bias {
        scores.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        total += *s;
    }
    out.fill(0.0);
    for (weight, v) in scores.iter().zip(values.chunks_exact(head_dim)) {
        let weight = weight / total;
        out.iter_mut().zip(v).for_each(|(o, x)| *o += weight * x);
    }
}

/// Dot product with eight independent partial sums, which the compiler turns into vector
/// lanes (a single running sum would force one addition after another).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut partial = [0f32; LANES];
    let (a_main, a_rest) = a.split_at(a.len() / LANES * LANES);
    let (b_main, b_rest) = b.split_at(a_main.len());
    for (x, y) in a_main.chunks_exact(LANES).zip(b_main.chunks_exact(LANES)) {
        for lane in 0..LANES {
            partial[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    partial.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_for_every_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "length {n}");
        }
    }

    #[test]
    fn one_query_is_a_softmax_weighted_sum_of_the_values() {
        // Two positions, head_dim 2: scores 1 and 3 (+ bias 0 and -2) → equal weights.
        let q = [1.0, 1.0];
        let keys = [0.5, 0.5, 1.5, 1.5];
        let values = [2.0, 0.0, 0.0, 4.0];
        let mut out = [0.0; 2];
        attend_one(&q, &keys, &values, Some(&[0.0, -2.0]), &mut out);
        assert!(
            (out[0] - 1.0).abs() < 1e-6 && (out[1] - 2.0).abs() < 1e-6,
            "{out:?}"
        );
    }
}
