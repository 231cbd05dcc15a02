//! T5's learned relative position bias, added to the attention scores of every layer of a
//! stack (the first layer owns the table; the others reuse its bias). The encoder looks both
//! ways; the decoder only looks back, and its buckets are computed with the causal formula.

use candle_core::{DType, Device, Result, Tensor};

use super::buckets::relative_position_bucket;

pub(crate) struct PositionBias {
    /// `[num_buckets, heads]`, f32.
    table: Tensor,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
}

impl PositionBias {
    pub(crate) fn new(
        table: Tensor,
        bidirectional: bool,
        num_buckets: usize,
        max_distance: usize,
    ) -> Result<Self> {
        Ok(Self {
            table: table.to_dtype(DType::F32)?,
            bidirectional,
            num_buckets,
            max_distance,
        })
    }

    /// Bias `[heads, queries.len(), keys]` for queries at the given positions over keys at
    /// positions `0..keys`.
    pub(crate) fn bias(&self, queries: &[usize], keys: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = queries
            .iter()
            .flat_map(|&q| {
                (0..keys).map(move |k| {
                    relative_position_bucket(
                        k as i64 - q as i64,
                        self.bidirectional,
                        self.num_buckets,
                        self.max_distance,
                    )
                })
            })
            .collect();
        let heads = self.table.dim(1)?;
        let buckets = Tensor::from_vec(buckets, queries.len() * keys, device)?;
        self.table
            .index_select(&buckets, 0)?
            .reshape((queries.len(), keys, heads))?
            .permute((2, 0, 1))?
            .contiguous()
    }
}

/// The decoder's bias for every position a slot can reach, computed once: a query at
/// position `p` sees keys `0..=p`, i.e. distances `p..=0`, so one table `[heads, capacity]`
/// indexed by reversed distance serves every step as a contiguous window.
pub(crate) struct DecoderBias {
    /// Column `j` holds the bias for distance `capacity - 1 - j`.
    by_reversed_distance: Tensor,
    capacity: usize,
}

impl DecoderBias {
    pub(crate) fn new(bias: &PositionBias, capacity: usize, device: &Device) -> Result<Self> {
        // The row of the query at position capacity - 1 over keys 0..capacity is exactly the
        // table: key j is at distance capacity - 1 - j.
        let last_row = bias.bias(&[capacity - 1], capacity, device)?;
        Ok(Self {
            by_reversed_distance: last_row.squeeze(1)?,
            capacity,
        })
    }

    /// `[heads, 1, position + 1]`: the bias of a query at `position` over keys `0..=position`.
    pub(crate) fn at(&self, position: usize) -> Result<Tensor> {
        self.by_reversed_distance
            .narrow(1, self.capacity - 1 - position, position + 1)?
            .unsqueeze(1)
    }
}
