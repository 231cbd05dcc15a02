//! A sequence's caches, owned by the caller (the batcher) rather than by the model, so that
//! sequences of different lengths can be decoded together and can join or leave a batch
//! between steps without touching anyone else's state.

use candle_core::{DType, Device, DeviceLocation, Result, Tensor};

use super::{Architecture, ModelError};

/// The shape of the caches a model expects; a slot carries the layout it was made for so a
/// slot from another model is refused instead of silently misread.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotLayout {
    pub architecture: Architecture,
    pub layers: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Self-attention positions: GPT-2's `n_positions`, T5's most decoder steps.
    pub capacity: usize,
    /// Encoder tokens the cross-attention cache holds (T5); 0 for decoder-only models.
    pub cross_capacity: usize,
    pub dtype: DType,
    pub device: DeviceLocation,
}

/// One layer's keys and values, `[heads, capacity, head_dim]` each, written in place.
#[derive(Debug)]
pub(crate) struct KvCache {
    keys: Tensor,
    values: Tensor,
}

impl KvCache {
    fn zeros(layout: &SlotLayout, capacity: usize, device: &Device) -> Result<Self> {
        let shape = (layout.heads, capacity, layout.head_dim);
        Ok(Self {
            keys: Tensor::zeros(shape, layout.dtype, device)?,
            values: Tensor::zeros(shape, layout.dtype, device)?,
        })
    }

    /// Writes `keys`/`values` (`[heads, n, head_dim]`) at positions `offset..offset + n`.
    pub(crate) fn write(&self, keys: &Tensor, values: &Tensor, offset: usize) -> Result<()> {
        self.keys.slice_set(&keys.contiguous()?, 1, offset)?;
        self.values.slice_set(&values.contiguous()?, 1, offset)
    }

    /// The whole key and value tensors, `[heads, capacity, head_dim]` each.
    pub(crate) fn tensors(&self) -> (&Tensor, &Tensor) {
        (&self.keys, &self.values)
    }

    /// The first `len` positions, as views into the cache (no copy).
    pub(crate) fn view(&self, len: usize) -> Result<(Tensor, Tensor)> {
        Ok((self.keys.narrow(1, 0, len)?, self.values.narrow(1, 0, len)?))
    }
}

/// The per-sequence state of one running generation: self-attention K/V for every layer,
/// (T5) the encoder's cross-attention K/V, and how many positions are filled.
///
/// Made by [`super::Model::new_slot`]; `prefill` resets it, so a slot is reused for the next
/// request without reallocating.
#[derive(Debug)]
pub struct Slot {
    layout: SlotLayout,
    self_attention: Vec<KvCache>,
    cross_attention: Vec<KvCache>,
    len: usize,
    cross_len: usize,
}

impl Slot {
    pub(crate) fn new(layout: SlotLayout, device: &Device) -> Result<Self> {
        let self_attention = (0..layout.layers)
            .map(|_| KvCache::zeros(&layout, layout.capacity, device))
            .collect::<Result<Vec<_>>>()?;
        let cross_attention = if layout.cross_capacity > 0 {
            (0..layout.layers)
                .map(|_| KvCache::zeros(&layout, layout.cross_capacity, device))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            layout,
            self_attention,
            cross_attention,
            len: 0,
            cross_len: 0,
        })
    }

    /// Positions filled in the self-attention cache (GPT-2: prompt + fed tokens; T5: decoder
    /// tokens fed, the start token included). This is the position of the next token.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slot holds no sequence (new, or not yet prefilled).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Self-attention positions this slot can hold.
    pub fn capacity(&self) -> usize {
        self.layout.capacity
    }

    /// Encoder tokens cached for cross-attention (T5); 0 for GPT-2.
    pub fn encoder_len(&self) -> usize {
        self.cross_len
    }

    /// Refuses a slot that another model (another shape, dtype or device) made.
    pub(crate) fn check_layout(
        &self,
        expected: &SlotLayout,
    ) -> std::result::Result<(), ModelError> {
        if &self.layout == expected {
            Ok(())
        } else {
            Err(ModelError::ForeignSlot {
                expected: format!("{expected:?}"),
                found: format!("{:?}", self.layout),
            })
        }
    }

    /// Forgets the previous sequence; the memory is kept and overwritten.
    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.cross_len = 0;
    }

    pub(crate) fn self_attention(&self, layer: usize) -> &KvCache {
        &self.self_attention[layer]
    }

    pub(crate) fn cross_attention(&self, layer: usize) -> &KvCache {
        &self.cross_attention[layer]
    }

    /// Marks `n` more self-attention positions as filled, once every layer has written them.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    pub(crate) fn set_encoder_len(&mut self, len: usize) {
        self.cross_len = len;
    }
}
