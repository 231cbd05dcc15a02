//! Greedy decoding over the `Model` API, and the ways tests load fixture models.

use std::sync::Arc;

use candle_core::{DType, Device};
use runtime::checkpoint::Checkpoint;
use runtime::model::{Model, Slot};

use references::model_path;

pub fn load_fixture(name: &str) -> Arc<dyn Model> {
    let dir = Checkpoint::open(model_path(name)).expect("fixture model directory opens");
    dir.load_model(&Device::Cpu, DType::F32)
        .expect("fixture model loads")
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// `steps` greedy tokens after `prompt`, one sequence at a time.
pub fn greedy(model: &dyn Model, slot: &mut Slot, prompt: &[u32], steps: usize) -> Vec<u32> {
    let mut tokens = Vec::with_capacity(steps);
    let mut logits = model.prefill(slot, prompt).expect("prefill");
    while tokens.len() < steps {
        let next = argmax(&logits);
        tokens.push(next);
        if tokens.len() == steps {
            break;
        }
        logits = model.decode(&mut [&mut *slot], &[next]).expect("decode");
    }
    tokens
}
