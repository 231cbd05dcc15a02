//! Transformer models over caller-owned caches.
//!
//! A [`Model`] holds only weights; every piece of per-sequence state (self-attention K/V, the
//! encoder's cross-attention K/V, the current position) lives in a [`Slot`] the caller owns.
//! That is what lets a batcher run sequences of different lengths through one `decode` call
//! and let sequences join and leave between steps.

mod activation;
mod attention;
mod config;
mod config_check;
mod cpu_attention;
mod cpu_threads;
mod error;
mod gelu;
pub mod gpt2;
mod inputs;
mod int8_matmul;
mod linear;
mod load;
mod norm;
mod packed;
mod projection;
mod skinny_matmul;
mod slot;
pub mod t5;
mod target;
mod weights;

pub use config::ModelConfig;
pub use cpu_threads::{on_cpu_pool, pin_cpu_threads};
pub use error::ModelError;
pub use load::load_model;
pub use slot::Slot;
pub use target::{MemoryEstimate, Precision, Target, WeightFormat};
pub use weights::Weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// Decoder-only `GPT2LMHeadModel`.
    Gpt2,
    /// Encoder-decoder `T5ForConditionalGeneration` (T5 v1.0, v1.1, Flan-T5).
    T5,
}

/// How many tokens a model accepts; validation (`PROMPT_TOO_LONG`) and slot sizing use these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// Longest prompt `prefill` accepts.
    pub max_prompt_tokens: usize,
    /// Bound on prompt + new tokens together: GPT-2's `n_positions`; `None` for T5, whose
    /// prompt and output live in separate stacks.
    pub max_total_tokens: Option<usize>,
    /// Most tokens one sequence may generate.
    pub max_new_tokens: usize,
}

pub trait Model: Send + Sync {
    fn architecture(&self) -> Architecture;
    fn vocab_size(&self) -> usize;
    fn eos_token_id(&self) -> u32;
    fn limits(&self) -> ContextLimits;
    /// A slot whose caches are allocated to full capacity up front, so a running sequence
    /// never allocates and its memory is known at admission time.
    fn new_slot(&self) -> Result<Slot, ModelError>;
    /// Resets `slot`, runs the prompt and returns the next-token logits (`[vocab]`, f32).
    fn prefill(&self, slot: &mut Slot, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
        self.prefill_batch(&mut [slot], &[prompt])
    }
    /// Resets `slots[i]` and runs `prompts[i]` into it, all in one pass where the model can
    /// (the projections of every prompt token as one matmul), and returns each slot's
    /// next-token logits, row-major `[slots.len() * vocab]`, f32. Row `i` equals what
    /// `prefill(slots[i], prompts[i])` alone would give. Bad input is refused before any slot
    /// is touched.
    fn prefill_batch(
        &self,
        slots: &mut [&mut Slot],
        prompts: &[&[u32]],
    ) -> Result<Vec<f32>, ModelError>;
    /// Whether [`Model::prefill_scored`] works: a decoder-only model predicts every prompt
    /// token from the ones before it; an encoder-decoder's prompt is the encoder's input,
    /// which no decoder position predicts (`docs/sampling.md` § Log-probabilities).
    fn scores_prompts(&self) -> bool {
        false
    }
    /// Like [`Model::prefill`], but returns the logits after every prompt position,
    /// row-major `[prompt.len() * vocab]`, f32: row `i` predicts token `i + 1`, and the last
    /// row is what `prefill` returns. One prompt at a time: it is the only way rows of
    /// different requests never meet in one pass, so the scores do not depend on the batch.
    fn prefill_scored(&self, slot: &mut Slot, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
        let _ = (slot, prompt);
        Err(ModelError::PromptScoringUnsupported)
    }
    /// Feeds `last[i]` to `slots[i]` and returns the next-token logits of every slot,
    /// row-major `[slots.len() * vocab]`, f32. Row `i` equals what decoding `slots[i]` alone
    /// would give.
    fn decode(&self, slots: &mut [&mut Slot], last: &[u32]) -> Result<Vec<f32>, ModelError>;
}
