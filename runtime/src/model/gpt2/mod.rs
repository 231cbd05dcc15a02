//! GPT-2 (`GPT2LMHeadModel`): learned positions, pre-norm blocks with Conv1D projections,
//! tanh-GELU MLPs, final LayerNorm, and an `lm_head` tied to the token embedding.

mod block;
mod config;

use candle_core::{DType, Device, Tensor};

pub use config::Gpt2Config;

use self::block::Block;
use super::inputs::{check_decode, start_prefill};
use super::norm::LayerNorm;
use super::projection::Projection;
use super::skinny_matmul::aligned;
use super::slot::{KvCache, SlotLayout};
use super::weights::Weights;
use super::{Architecture, ContextLimits, Model, ModelError, Slot};
use crate::load_error::LoadError;

pub struct Gpt2 {
    config: Gpt2Config,
    /// `[vocab, n_embd]`; also the output projection when tied.
    wte: Tensor,
    /// `[n_positions, n_embd]`.
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// `[vocab, n_embd]`: `wte` itself unless the checkpoint unties the head.
    lm_head: Projection,
    layout: SlotLayout,
    device: Device,
}

impl Gpt2 {
    /// Builds the model from `weights` (their device and dtype) as `config` describes it.
    pub(crate) fn load(weights: &Weights, config: &Gpt2Config) -> Result<Self, LoadError> {
        let (device, dtype) = (weights.device().clone(), weights.dtype());
        // `GPT2LMHeadModel` checkpoints name the body `transformer.*`; bare `GPT2Model` ones
        // do not.
        let weights = if weights.contains("transformer.wte.weight") {
            weights.with_prefix("transformer.")
        } else {
            weights.with_prefix("")
        };
        let (vocab, d) = (config.vocab_size, config.n_embd);
        let activation = config
            .activation()
            .ok_or_else(|| LoadError::InvalidConfig {
                // Unreachable for configs the checkpoint reader validated.
                path: "config.json".into(),
                field: "activation_function",
                expected: "a supported activation".to_string(),
                found: config.activation_function.clone(),
            })?;
        let wte =
            aligned(weights.tensor("wte.weight", &[vocab, d])?).map_err(LoadError::prepare)?;
        // A tied head reads the embedding table: the same storage in float, a quantized copy
        // in int8 (the lookup keeps reading the float table).
        let lm_head = if config.tie_word_embeddings {
            Projection::new(&wte, weights.format())?
        } else {
            Projection::new(
                &weights.unprefixed("lm_head.weight", &[vocab, d])?,
                weights.format(),
            )?
        };
        let blocks = (0..config.n_layer)
            .map(|layer| Block::load(&weights, config, activation, layer))
            .collect::<Result<Vec<_>, _>>()?;
        let ln_f = LayerNorm::new(
            weights.tensor_f32("ln_f.weight", &[d])?,
            weights.tensor_f32("ln_f.bias", &[d])?,
            config.layer_norm_epsilon,
        )
        .map_err(LoadError::prepare)?;
        Ok(Self {
            wpe: weights.tensor("wpe.weight", &[config.n_positions, d])?,
            wte,
            blocks,
            ln_f,
            lm_head,
            layout: SlotLayout {
                architecture: Architecture::Gpt2,
                layers: config.n_layer,
                heads: config.n_head,
                head_dim: config.head_dim(),
                capacity: config.n_positions,
                cross_capacity: 0,
                dtype,
                device: device.location(),
            },
            config: config.clone(),
            device,
        })
    }

    /// Final norm and head over `xs` `[rows, n_embd]` → f32 logits, row-major.
    fn logits(&self, xs: &Tensor) -> candle_core::Result<Vec<f32>> {
        let logits = self.lm_head.forward(&self.ln_f.forward(xs)?)?;
        logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
    }

    /// Prefills `prompts` into `slots` in one pass and returns the logits of each prompt's
    /// last row, or with `every_row` of every row (echo scoring).
    fn prefill_rows(
        &self,
        slots: &mut [&mut Slot],
        prompts: &[&[u32]],
        every_row: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let (positions, vocab) = (self.config.n_positions, self.config.vocab_size);
        let Some(packed) = start_prefill(slots, prompts, &self.layout, positions, vocab)? else {
            return Ok(Vec::new());
        };
        let mut xs = self
            .wte
            .index_select(&self.ids(&packed.ids)?, 0)?
            .add(&self.wpe.index_select(&self.ids(&packed.positions())?, 0)?)?;
        let masks = prompts
            .iter()
            .map(|p| causal_mask(p.len(), &self.device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let last_rows = self.ids(&packed.last_rows())?;
        // `n_layer` ≥ 1 (config check): the last block returns only `last_rows`, unless
        // every row is wanted.
        let last_layer = self.blocks.len() - 1;
        for (layer, block) in self.blocks.iter().enumerate() {
            let caches: Vec<&KvCache> = slots.iter().map(|s| s.self_attention(layer)).collect();
            let keep = (layer == last_layer && !every_row).then_some(&last_rows);
            xs = block.prefill(&xs, &packed, &caches, &masks, keep)?;
        }
        for (slot, prompt) in slots.iter_mut().zip(prompts) {
            slot.advance(prompt.len());
        }
        Ok(self.logits(&xs)?)
    }

    fn ids(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        Tensor::new(ids, &self.device)
    }
}

impl Model for Gpt2 {
    fn architecture(&self) -> Architecture {
        Architecture::Gpt2
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn eos_token_id(&self) -> u32 {
        self.config.eos_token_id
    }

    fn limits(&self) -> ContextLimits {
        self.config.limits()
    }

    fn new_slot(&self) -> Result<Slot, ModelError> {
        Ok(Slot::new(self.layout.clone(), &self.device)?)
    }

    fn prefill_batch(
        &self,
        slots: &mut [&mut Slot],
        prompts: &[&[u32]],
    ) -> Result<Vec<f32>, ModelError> {
        self.prefill_rows(slots, prompts, false)
    }

    fn scores_prompts(&self) -> bool {
        true
    }

    fn prefill_scored(&self, slot: &mut Slot, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
        self.prefill_rows(&mut [slot], &[prompt], true)
    }

    fn decode(&self, slots: &mut [&mut Slot], last: &[u32]) -> Result<Vec<f32>, ModelError> {
        check_decode(slots, last, &self.layout, self.config.vocab_size)?;
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let lens: Vec<usize> = slots.iter().map(|slot| slot.len()).collect();
        let positions: Vec<u32> = lens.iter().map(|&len| len as u32).collect();
        let mut xs = self
            .wte
            .index_select(&self.ids(last)?, 0)?
            .add(&self.wpe.index_select(&self.ids(&positions)?, 0)?)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let caches: Vec<&KvCache> = slots.iter().map(|s| s.self_attention(layer)).collect();
            xs = block.decode(&xs, &caches, &lens)?;
        }
        for slot in slots.iter_mut() {
            slot.advance(1);
        }
        Ok(self.logits(&xs)?)
    }
}

/// Additive mask `[n, n]`: 0 where a query may see a key (key ≤ query), −∞ above the
/// diagonal.
fn causal_mask(n: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..n)
        .flat_map(|q| (0..n).map(move |k| if k <= q { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(mask, (n, n), device)
}
