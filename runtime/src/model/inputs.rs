//! Checks on what callers hand to `prefill` and `decode`, done before any tensor work so a
//! bad request is a typed error and leaves the slots untouched.

use super::packed::PackedPrompts;
use super::slot::{Slot, SlotLayout};
use super::ModelError;

pub(crate) fn check_tokens(tokens: &[u32], vocab_size: usize) -> Result<(), ModelError> {
    match tokens.iter().find(|&&t| t as usize >= vocab_size) {
        Some(&token) => Err(ModelError::TokenOutOfRange { token, vocab_size }),
        None => Ok(()),
    }
}

fn check_prompt(
    prompt: &[u32],
    max_prompt_tokens: usize,
    vocab_size: usize,
) -> Result<(), ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::EmptyPrompt);
    }
    if prompt.len() > max_prompt_tokens {
        return Err(ModelError::PromptTooLong {
            given: prompt.len(),
            max: max_prompt_tokens,
        });
    }
    check_tokens(prompt, vocab_size)
}

/// Every slot must come from this model, hold a sequence and have room for one more token.
pub(crate) fn check_decode(
    slots: &[&mut Slot],
    last: &[u32],
    layout: &SlotLayout,
    vocab_size: usize,
) -> Result<(), ModelError> {
    if slots.len() != last.len() {
        return Err(ModelError::BatchMismatch {
            slots: slots.len(),
            tokens: last.len(),
        });
    }
    check_tokens(last, vocab_size)?;
    for slot in slots {
        slot.check_layout(layout)?;
        if slot.is_empty() {
            return Err(ModelError::SlotEmpty);
        }
        if slot.len() >= slot.capacity() {
            return Err(ModelError::SlotFull {
                capacity: slot.capacity(),
            });
        }
    }
    Ok(())
}

/// Checks a batched prefill (see [`check_prefill`]), then resets every slot and packs the
/// prompts. `None`: there is nothing to prefill.
pub(crate) fn start_prefill(
    slots: &mut [&mut Slot],
    prompts: &[&[u32]],
    layout: &SlotLayout,
    max_prompt_tokens: usize,
    vocab_size: usize,
) -> Result<Option<PackedPrompts>, ModelError> {
    check_prefill(slots, prompts, layout, max_prompt_tokens, vocab_size)?;
    if slots.is_empty() {
        return Ok(None);
    }
    for slot in slots.iter_mut() {
        slot.reset();
    }
    Ok(Some(PackedPrompts::new(prompts)))
}

/// One prompt per slot, each valid, every slot from this model.
fn check_prefill(
    slots: &[&mut Slot],
    prompts: &[&[u32]],
    layout: &SlotLayout,
    max_prompt_tokens: usize,
    vocab_size: usize,
) -> Result<(), ModelError> {
    if slots.len() != prompts.len() {
        return Err(ModelError::PrefillMismatch {
            slots: slots.len(),
            prompts: prompts.len(),
        });
    }
    for (slot, prompt) in slots.iter().zip(prompts) {
        slot.check_layout(layout)?;
        check_prompt(prompt, max_prompt_tokens, vocab_size)?;
    }
    Ok(())
}
