//! Decode throughput of the candle models over slots: one sequence, then a batch.
//!
//! `cargo bench -p runtime --bench decode -- [MODEL_DIR] [--prompt N] [--steps N] [--batch N]
//! [--repeats N]`. MODEL_DIR defaults to `target/bench/gpt2-small-random`
//! (`scripts/bench/make_checkpoint.py`). Each sequence's prompt (random ids) is prefilled
//! untimed; then `steps` greedy decode steps are timed. Prints one JSON line per batch
//! size, like `scripts/bench/hf_decode.py`, so `scripts/bench/run.sh` can set them side
//! by side.

use std::path::PathBuf;
use std::time::Instant;

use runtime::checkpoint::Checkpoint;
use runtime::model::{on_cpu_pool, pin_cpu_threads, Model, Slot, Target, WeightFormat};

struct Options {
    model_dir: PathBuf,
    prompt: usize,
    steps: usize,
    batch: usize,
    repeats: usize,
    /// Measure only the batch, not the single stream (for profiling).
    batch_only: bool,
    /// Int8 projection weights (`--int8`) instead of f32.
    int8: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        model_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/bench/gpt2-small-random"),
        prompt: 32,
        steps: 64,
        batch: 16,
        repeats: 3,
        batch_only: false,
        int8: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{name}: not a count: {value}"))
        };
        match arg.as_str() {
            "--prompt" => options.prompt = number("--prompt")?,
            "--steps" => options.steps = number("--steps")?,
            "--batch" => options.batch = number("--batch")?,
            "--repeats" => options.repeats = number("--repeats")?,
            "--batch-only" => options.batch_only = true,
            "--int8" => options.int8 = true,
            "--bench" => {} // added by `cargo bench`
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            dir => options.model_dir = PathBuf::from(dir),
        }
    }
    Ok(options)
}

/// Deterministic pseudo-random prompt ids (a linear congruential generator is plenty here).
fn prompt_ids(seed: u64, len: usize, vocab: usize) -> Vec<u32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn argmax_rows(logits: &[f32], vocab: usize) -> Vec<u32> {
    logits
        .chunks(vocab)
        .map(|row| {
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

/// Tokens per second and milliseconds per step of `steps` decode steps over `batch` slots,
/// and the milliseconds each slot's prefill took (one prompt alone: what time-to-first-token
/// costs at idle, before HTTP and sampling). Model calls run on the rayon pool, as the
/// agent's scheduler runs them.
fn decode_rate(
    model: &dyn Model,
    batch: usize,
    options: &Options,
) -> Result<(f64, f64, Vec<f64>), String> {
    let vocab = model.vocab_size();
    let mut slots: Vec<Slot> = (0..batch)
        .map(|_| model.new_slot())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut last = Vec::with_capacity(batch);
    let mut prefill_ms = Vec::with_capacity(batch);
    for (i, slot) in slots.iter_mut().enumerate() {
        let prompt = prompt_ids(i as u64, options.prompt, vocab);
        let start = Instant::now();
        let logits = on_cpu_pool(|| model.prefill(slot, &prompt)).map_err(|e| e.to_string())?;
        prefill_ms.push(start.elapsed().as_secs_f64() * 1e3);
        last.extend(argmax_rows(&logits, vocab));
    }
    let start = Instant::now();
    for _ in 0..options.steps {
        let mut refs: Vec<&mut Slot> = slots.iter_mut().collect();
        let logits = on_cpu_pool(|| model.decode(&mut refs, &last)).map_err(|e| e.to_string())?;
        last = argmax_rows(&logits, vocab);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((
        (batch * options.steps) as f64 / elapsed,
        elapsed * 1e3 / options.steps as f64,
        prefill_ms,
    ))
}

fn run() -> Result<(), String> {
    let options = options()?;
    let dir = Checkpoint::open(&options.model_dir).map_err(|e| {
        format!("{e}\n(make the checkpoint with: python scripts/bench/make_checkpoint.py)")
    })?;
    let format = if options.int8 {
        WeightFormat::Int8
    } else {
        WeightFormat::Float
    };
    let model = dir
        .load_with(Target::Cpu, format)
        .map_err(|e| e.to_string())?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    decode_rate(
        model.as_ref(),
        1,
        &Options {
            steps: 4,
            ..options_copy(&options)
        },
    )?; // warm-up
    let sizes = if options.batch_only {
        vec![options.batch]
    } else {
        vec![1, options.batch]
    };
    for batch in sizes {
        let mut runs = Vec::with_capacity(options.repeats);
        for _ in 0..options.repeats.max(1) {
            runs.push(decode_rate(model.as_ref(), batch, &options)?);
        }
        let best = runs
            .iter()
            .map(|r| (r.0, r.1))
            .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
        let all: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.0)).collect();
        let mut prefills: Vec<f64> = runs.iter().flat_map(|r| r.2.iter().copied()).collect();
        prefills.sort_by(f64::total_cmp);
        let prefill = prefills[0];
        let median_prefill = prefills[prefills.len() / 2];
        println!(
            "{{\"impl\": \"gpu-agent runtime (candle 0.11, {})\", \"batch\": {batch}, \"prompt\": {}, \
             \"steps\": {}, \"threads\": \"{threads}\", \"tokens_per_s\": {:.2}, \"ms_per_step\": {:.2}, \
             \"all_tokens_per_s\": [{}], \"best_prefill_ms\": {prefill:.2}, \"median_prefill_ms\": {median_prefill:.2}}}",
            if options.int8 { "int8 weights" } else { "f32" },
            options.prompt,
            options.steps,
            best.0,
            best.1,
            all.join(", ")
        );
    }
    Ok(())
}

fn options_copy(options: &Options) -> Options {
    Options {
        model_dir: options.model_dir.clone(),
        ..*options
    }
}

fn main() {
    // What the agent binary should do at start-up too (see runtime::model::pin_cpu_threads).
    let threads = pin_cpu_threads();
    eprintln!("RAYON_NUM_THREADS={threads}");
    if let Err(message) = run() {
        eprintln!("decode bench: {message}");
        std::process::exit(1);
    }
}
