//! Slots are independent: prefilling or decoding several of different lengths together
//! gives each the logits it would get alone, and a slot can be reused for the next
//! sequence.

use references::golden_cases;
use runtime::model::{Model, Slot};

use crate::generation::{argmax, load_fixture};

const BATCH_TOLERANCE: f32 = 1e-4;
const STEPS: usize = 6;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Greedy run of one sequence alone: the tokens fed at each decode step and the logits
/// every step returned (prefill first).
fn alone(model: &dyn Model, prompt: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut slot = model.new_slot().expect("slot");
    let mut logits = vec![model.prefill(&mut slot, prompt).expect("prefill")];
    let mut fed = Vec::new();
    for _ in 0..steps {
        let next = argmax(logits.last().expect("logits"));
        fed.push(next);
        logits.push(model.decode(&mut [&mut slot], &[next]).expect("decode"));
    }
    (fed, logits)
}

/// The reference prompts of a fixture model (several lengths).
fn prompts(model_dir: &str) -> Vec<Vec<u32>> {
    golden_cases(model_dir)
        .into_iter()
        .map(|c| c.prompt_ids)
        .collect()
}

fn assert_batched_decode_equals_single(model_dir: &str) {
    assert_batched_decode_within(model_dir, BATCH_TOLERANCE);
}

/// Batched decode rows against decoding each slot alone, within `tolerance`.
fn assert_batched_decode_within(model_dir: &str, tolerance: f32) {
    assert_model_batched_decode_within(load_fixture(model_dir).as_ref(), model_dir, tolerance);
}

/// [`assert_batched_decode_within`] for `model`, loaded from fixture `model_dir` as the
/// caller chose (int8 weights, say).
pub fn assert_model_batched_decode_within(model: &dyn Model, model_dir: &str, tolerance: f32) {
    let prompts = prompts(model_dir);
    let lengths: std::collections::BTreeSet<usize> = prompts.iter().map(Vec::len).collect();
    assert!(lengths.len() >= 3, "prompts of different lengths");
    let references = references(model, &prompts);
    let mut slots = fresh_slots(model, prompts.len());
    // Prefilled one by one, as the references were (batched prefill has its own test): what
    // is compared below is the batched decode.
    for (slot, prompt) in slots.iter_mut().zip(&prompts) {
        model.prefill(slot, prompt).expect("prefill");
    }
    assert_batched_steps_within(model, &mut slots, &references, tolerance, model_dir);
}

/// Each prompt run alone (see [`alone`]).
fn references(model: &dyn Model, prompts: &[Vec<u32>]) -> Vec<(Vec<u32>, Vec<Vec<f32>>)> {
    prompts.iter().map(|p| alone(model, p, STEPS)).collect()
}

fn fresh_slots(model: &dyn Model, count: usize) -> Vec<Slot> {
    (0..count)
        .map(|_| model.new_slot().expect("slot"))
        .collect()
}

/// `STEPS` batched decode steps over `slots` (already prefilled), feeding each the tokens
/// its reference was fed, each row within `tolerance` of the reference's logits.
fn assert_batched_steps_within(
    model: &dyn Model,
    slots: &mut [Slot],
    references: &[(Vec<u32>, Vec<Vec<f32>>)],
    tolerance: f32,
    what: &str,
) {
    let vocab = model.vocab_size();
    for step in 0..STEPS {
        let last: Vec<u32> = references.iter().map(|(fed, _)| fed[step]).collect();
        let mut batch: Vec<&mut Slot> = slots.iter_mut().collect();
        let rows = model.decode(&mut batch, &last).expect("batched decode");
        assert_eq!(rows.len(), references.len() * vocab);
        for (i, (_, logits)) in references.iter().enumerate() {
            let diff = max_abs_diff(&rows[i * vocab..(i + 1) * vocab], &logits[step + 1]);
            assert!(
                diff <= tolerance,
                "{what}: step {step}, sequence {i}: batched differs from alone by {diff}"
            );
        }
    }
}

/// Prompts of different lengths prefilled together give each the logits it gets alone, and
/// the slots then decode as if each had been prefilled on its own.
fn assert_batched_prefill_equals_single(model_dir: &str) {
    let model = load_fixture(model_dir);
    let prompts = prompts(model_dir);
    let references = references(model.as_ref(), &prompts);
    let mut slots = fresh_slots(model.as_ref(), prompts.len());
    let vocab = model.vocab_size();
    let views: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let rows = {
        let mut batch: Vec<&mut Slot> = slots.iter_mut().collect();
        model
            .prefill_batch(&mut batch, &views)
            .expect("batched prefill")
    };
    assert_eq!(rows.len(), prompts.len() * vocab);
    for (i, ((_, logits), slot)) in references.iter().zip(&slots).enumerate() {
        let diff = max_abs_diff(&rows[i * vocab..(i + 1) * vocab], &logits[0]);
        assert!(
            diff <= BATCH_TOLERANCE,
            "{model_dir}: prompt {i} prefilled in a batch differs from alone by {diff}"
        );
        assert!(!slot.is_empty());
    }
    let what = format!("{model_dir} after a batched prefill");
    assert_batched_steps_within(
        model.as_ref(),
        &mut slots,
        &references,
        BATCH_TOLERANCE,
        &what,
    );
}

#[test]
fn gpt2_batched_prefill_equals_prefilling_each_prompt_alone() {
    assert_batched_prefill_equals_single("gpt2-tiny");
}

#[test]
fn t5_batched_prefill_equals_prefilling_each_prompt_alone() {
    assert_batched_prefill_equals_single("t5-tiny");
    assert_batched_prefill_equals_single("t5-v1_0-tiny");
}

#[test]
fn a_bad_prompt_refuses_the_whole_prefill_batch_before_touching_a_slot() {
    let model = load_fixture("gpt2-tiny");
    let prompts = prompts("gpt2-tiny");
    let mut used = model.new_slot().expect("slot");
    model.prefill(&mut used, &prompts[0]).expect("prefill");
    let held = used.len();
    let mut fresh = model.new_slot().expect("slot");
    let out_of_range = [u32::MAX];
    let error = model
        .prefill_batch(&mut [&mut used, &mut fresh], &[&prompts[1], &out_of_range])
        .expect_err("a token beyond the vocabulary");
    assert!(error.to_string().contains("vocab"), "{error}");
    assert_eq!(used.len(), held, "the good slot kept its sequence");
    assert!(fresh.is_empty());
    let mismatch = model
        .prefill_batch(&mut [&mut fresh], &[&prompts[0], &prompts[1]])
        .expect_err("two prompts for one slot");
    assert!(mismatch.to_string().contains("one per slot"), "{mismatch}");
}

/// On the CPU in f32, every per-row operation of a decode step (the projections and heads
/// through `skinny_matmul` up to its 32 rows, attention through `cpu_attention`, norms and
/// activations) computes a row the same way whoever shares the batch: the logits are equal
/// to the bit, so greedy and seeded outputs cannot depend on the batch.
#[test]
fn cpu_batched_decode_is_bit_identical_to_decoding_alone() {
    for model in ["gpt2-tiny", "t5-tiny", "t5-v1_0-tiny"] {
        assert_batched_decode_within(model, 0.0);
    }
}

#[test]
fn gpt2_batched_decode_equals_decoding_each_slot_alone() {
    assert_batched_decode_equals_single("gpt2-tiny");
}

#[test]
fn t5_batched_decode_equals_decoding_each_slot_alone() {
    assert_batched_decode_equals_single("t5-tiny");
}

/// Sequences join and leave between steps: a slot that finished is re-prefilled with a new
/// prompt and decodes beside one that is already several steps in.
fn assert_joining_and_reuse_keep_results(model_dir: &str) {
    let model = load_fixture(model_dir);
    let prompts = prompts(model_dir);
    let (first, second, third) = (&prompts[0], &prompts[1], &prompts[2]);
    let (fed_first, logits_first) = alone(model.as_ref(), first, 2 * STEPS);
    let (fed_third, logits_third) = alone(model.as_ref(), third, STEPS);

    let mut running = model.new_slot().expect("slot");
    let mut reused = model.new_slot().expect("slot");
    model.prefill(&mut running, first).expect("prefill");
    model.prefill(&mut reused, second).expect("prefill");
    for &token in &fed_first[..STEPS] {
        let last = [token, 0];
        model
            .decode(&mut [&mut running, &mut reused], &last)
            .expect("decode");
    }
    // `reused` finishes; a new sequence takes its slot while `running` goes on.
    let logits = model
        .prefill(&mut reused, third)
        .expect("prefill into a used slot");
    assert!(max_abs_diff(&logits, &logits_third[0]) <= BATCH_TOLERANCE);
    let vocab = model.vocab_size();
    for step in 0..STEPS {
        let last = [fed_first[STEPS + step], fed_third[step]];
        let rows = model
            .decode(&mut [&mut running, &mut reused], &last)
            .expect("decode");
        let diff_running = max_abs_diff(&rows[..vocab], &logits_first[STEPS + step + 1]);
        let diff_joined = max_abs_diff(&rows[vocab..], &logits_third[step + 1]);
        assert!(
            diff_running <= BATCH_TOLERANCE,
            "{model_dir}: running sequence drifted by {diff_running}"
        );
        assert!(
            diff_joined <= BATCH_TOLERANCE,
            "{model_dir}: joined sequence drifted by {diff_joined}"
        );
    }
}

#[test]
fn t5_v1_0_batched_decode_equals_decoding_each_slot_alone() {
    assert_batched_decode_equals_single("t5-v1_0-tiny");
}

#[test]
fn gpt2_slots_join_leave_and_are_reused_without_changing_results() {
    assert_joining_and_reuse_keep_results("gpt2-tiny");
}

#[test]
fn t5_slots_join_leave_and_are_reused_without_changing_results() {
    assert_joining_and_reuse_keep_results("t5-tiny");
}

#[test]
fn decoding_no_slots_returns_no_logits() {
    let model = load_fixture("gpt2-tiny");
    assert!(model.decode(&mut [], &[]).expect("empty batch").is_empty());
}
