//! Several prompts laid end to end as the rows of one batch. A batched prefill runs every
//! projection and feed-forward over all rows as one matmul (one pass over the weights for
//! the whole batch) and only attention per prompt, over that prompt's own rows.

use std::ops::Range;

use candle_core::{Result, Tensor};

use super::attention::split_heads;

pub(crate) struct PackedPrompts {
    /// Every prompt's token ids, one prompt after another.
    pub ids: Vec<u32>,
    /// The rows of prompt `i`.
    pub spans: Vec<Range<usize>>,
}

impl PackedPrompts {
    pub(crate) fn new(prompts: &[&[u32]]) -> Self {
        let mut spans = Vec::with_capacity(prompts.len());
        let mut start = 0;
        for prompt in prompts {
            spans.push(start..start + prompt.len());
            start += prompt.len();
        }
        Self {
            ids: prompts.concat(),
            spans,
        }
    }

    /// Each row's position within its own prompt.
    pub(crate) fn positions(&self) -> Vec<u32> {
        self.spans.iter().flat_map(|s| 0..s.len() as u32).collect()
    }

    /// The row of each prompt's last token: where its next-token logits come from.
    pub(crate) fn last_rows(&self) -> Vec<u32> {
        self.spans.iter().map(|s| (s.end - 1) as u32).collect()
    }

    /// Prompt `i`'s rows of `xs` `[rows, heads * head_dim]`, split into
    /// `[heads, n_i, head_dim]` for its own attention.
    pub(crate) fn prompt_heads(&self, xs: &Tensor, i: usize, heads: usize) -> Result<Tensor> {
        let span = &self.spans[i];
        split_heads(&xs.narrow(0, span.start, span.len())?, heads)
    }
}
