//! Bad inputs to `prefill`/`decode` are typed errors that name the limit, never panics, and
//! a refused call leaves the slot as it was.

use runtime::model::{Architecture, ContextLimits, ModelError};

use crate::generation::load_fixture;

#[test]
fn gpt2_limits_come_from_n_positions() {
    let model = load_fixture("gpt2-tiny");
    assert_eq!(model.architecture(), Architecture::Gpt2);
    assert_eq!(model.vocab_size(), 50257);
    assert_eq!(model.eos_token_id(), 50256);
    assert_eq!(
        model.limits(),
        ContextLimits {
            max_prompt_tokens: 128,
            max_total_tokens: Some(128),
            max_new_tokens: 128
        }
    );
}

#[test]
fn t5_limits_are_512_prompt_and_512_new_tokens() {
    let model = load_fixture("t5-tiny");
    assert_eq!(model.architecture(), Architecture::T5);
    assert_eq!(model.vocab_size(), 32128);
    assert_eq!(model.eos_token_id(), 1);
    assert_eq!(
        model.limits(),
        ContextLimits {
            max_prompt_tokens: 512,
            max_total_tokens: None,
            max_new_tokens: 512
        }
    );
}

#[test]
fn prompt_longer_than_the_context_is_refused_with_the_limit() {
    for (name, max) in [("gpt2-tiny", 128), ("t5-tiny", 512)] {
        let model = load_fixture(name);
        let mut slot = model.new_slot().expect("slot");
        let prompt = vec![5u32; max + 1];
        match model.prefill(&mut slot, &prompt) {
            Err(ModelError::PromptTooLong { given, max: limit }) => {
                assert_eq!((given, limit), (max + 1, max), "{name}");
            }
            other => panic!("{name}: expected PromptTooLong, got {other:?}"),
        }
        assert!(
            model.prefill(&mut slot, &vec![5u32; max]).is_ok(),
            "{name}: {max} tokens fit"
        );
    }
}

#[test]
fn empty_prompt_is_refused() {
    let model = load_fixture("t5-tiny");
    let mut slot = model.new_slot().expect("slot");
    assert!(matches!(
        model.prefill(&mut slot, &[]),
        Err(ModelError::EmptyPrompt)
    ));
}

#[test]
fn gpt2_slot_full_after_n_positions() {
    let model = load_fixture("gpt2-tiny");
    let mut slot = model.new_slot().expect("slot");
    model
        .prefill(&mut slot, &vec![11u32; 127])
        .expect("prefill");
    model
        .decode(&mut [&mut slot], &[11])
        .expect("the 128th position fits");
    assert_eq!(slot.len(), 128);
    match model.decode(&mut [&mut slot], &[11]) {
        Err(ModelError::SlotFull { capacity }) => assert_eq!(capacity, 128),
        other => panic!("expected SlotFull, got {other:?}"),
    }
    assert_eq!(slot.len(), 128);
}

#[test]
fn t5_slot_full_after_512_decoder_positions() {
    let model = load_fixture("t5-tiny");
    let mut slot = model.new_slot().expect("slot");
    model.prefill(&mut slot, &[37, 629, 1]).expect("prefill");
    while slot.len() < slot.capacity() {
        model.decode(&mut [&mut slot], &[9]).expect("decode");
    }
    assert_eq!(slot.len(), 512);
    assert!(matches!(
        model.decode(&mut [&mut slot], &[9]),
        Err(ModelError::SlotFull { capacity: 512 })
    ));
}

#[test]
fn out_of_vocabulary_token_is_refused_and_the_slot_is_unchanged() {
    let model = load_fixture("gpt2-tiny");
    let mut slot = model.new_slot().expect("slot");
    assert!(matches!(
        model.prefill(&mut slot, &[1, 50257]),
        Err(ModelError::TokenOutOfRange {
            token: 50257,
            vocab_size: 50257
        })
    ));
    model.prefill(&mut slot, &[1, 2, 3]).expect("prefill");
    assert!(matches!(
        model.decode(&mut [&mut slot], &[u32::MAX]),
        Err(ModelError::TokenOutOfRange { .. })
    ));
    assert_eq!(slot.len(), 3);
}

#[test]
fn decoding_a_slot_that_was_never_prefilled_is_refused() {
    let model = load_fixture("t5-tiny");
    let mut slot = model.new_slot().expect("slot");
    assert!(matches!(
        model.decode(&mut [&mut slot], &[3]),
        Err(ModelError::SlotEmpty)
    ));
}

#[test]
fn one_last_token_per_slot_is_required() {
    let model = load_fixture("gpt2-tiny");
    let mut slot = model.new_slot().expect("slot");
    model.prefill(&mut slot, &[1, 2]).expect("prefill");
    assert!(matches!(
        model.decode(&mut [&mut slot], &[1, 2]),
        Err(ModelError::BatchMismatch {
            slots: 1,
            tokens: 2
        })
    ));
}

#[test]
fn a_slot_from_another_model_is_refused() {
    let gpt2 = load_fixture("gpt2-tiny");
    let t5 = load_fixture("t5-tiny");
    let mut t5_slot = t5.new_slot().expect("slot");
    assert!(matches!(
        gpt2.prefill(&mut t5_slot, &[1, 2]),
        Err(ModelError::ForeignSlot { .. })
    ));
    t5.prefill(&mut t5_slot, &[1, 2]).expect("prefill");
    assert!(matches!(
        gpt2.decode(&mut [&mut t5_slot], &[1]),
        Err(ModelError::ForeignSlot { .. })
    ));
}
