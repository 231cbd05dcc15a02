//! CTranslate2 (through ct2rs) on our own conversions reproduces the reference outputs:
//! float32 greedy = Hugging Face transformers' greedy (`golden.json`), int8 greedy =
//! CTranslate2 Python's greedy on its own int8_float16 conversion.

use crate::common::{derived_checkpoint, fixtures, golden, Scratch};
use runtime::ct2::{
    convert, Architecture, ComputeType, Ct2Device, Ct2Finish, Ct2LoadOptions, Ct2Model, Ct2Request,
    Ct2Sampling, Quantization, StepControl, StepEvent,
};
use serde_json::Value;

/// Steps whose top-2 logit margin is below this may legitimately flip under float noise.
const MARGIN: f64 = 5e-4;

struct Case {
    prompt: Vec<u32>,
    greedy: Vec<u32>,
    margins: Vec<f64>,
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("id list")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

fn cases(model: &str) -> Vec<Case> {
    golden()["models"][model]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(case_of)
        .collect()
}

fn case_of(c: &Value) -> Case {
    Case {
        prompt: ids(&c["prompt_ids"]),
        greedy: ids(&c["greedy_ids"]),
        margins: c["step_margins"]
            .as_array()
            .expect("margins")
            .iter()
            .map(|m| m.as_f64().expect("margin"))
            .collect(),
    }
}

/// The golden ids up to (excluding) the first step whose margin is below [`MARGIN`].
fn decided_prefix(case: &Case) -> &[u32] {
    let decided = case.margins.iter().take_while(|m| **m >= MARGIN).count();
    &case.greedy[..decided.min(case.greedy.len())]
}

fn load(model: &str, quantization: Quantization, compute_type: ComputeType) -> (Scratch, Ct2Model) {
    let dir = Scratch::new("ct2-gen");
    let converted = convert(&fixtures().join(model), dir.path(), quantization).expect("convert");
    let model =
        Ct2Model::load(&converted.dir, converted.architecture, &cpu(compute_type)).expect("load");
    (dir, model)
}

fn cpu(compute_type: ComputeType) -> Ct2LoadOptions {
    Ct2LoadOptions {
        device: Ct2Device::Cpu,
        device_index: 0,
        compute_type,
        threads: 0,
    }
}

fn greedy(prompt: &[u32], max_new_tokens: usize) -> Ct2Request {
    Ct2Request {
        prompt: prompt.to_vec(),
        max_new_tokens,
        sampling: Ct2Sampling::GREEDY,
        logprobs: false,
    }
}

fn run(model: &Ct2Model, requests: &[Ct2Request]) -> Vec<Vec<u32>> {
    model
        .generate(requests, &mut |_| StepControl::Continue)
        .expect("generate")
        .into_iter()
        .map(|o| o.token_ids)
        .collect()
}

fn assert_float32_matches_transformers(name: &str) {
    let (_dir, model) = load(name, Quantization::Float32, ComputeType::Float32);
    assert_eq!(model.compute_type(), ComputeType::Float32);
    let golden_name = if name.starts_with("gpt2") {
        "gpt2"
    } else {
        "t5"
    };
    for (i, case) in cases(golden_name).iter().enumerate() {
        let out = &run(&model, &[greedy(&case.prompt, case.greedy.len())])[0];
        let expected = decided_prefix(case);
        assert_eq!(&out[..expected.len()], expected, "{name} case {i}");
    }
}

#[test]
fn gpt2_float32_greedy_equals_transformers_golden_output() {
    assert_float32_matches_transformers("gpt2-tiny");
}

#[test]
fn t5_float32_greedy_equals_transformers_golden_output() {
    assert_float32_matches_transformers("t5-tiny");
}

#[test]
fn gpt2_batch_of_different_prompt_lengths_gives_each_prompt_its_solo_output() {
    let (_dir, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float32);
    let cases = cases("gpt2");
    let requests: Vec<_> = cases
        .iter()
        .map(|c| greedy(&c.prompt, c.greedy.len()))
        .collect();
    let batched = run(&model, &requests);
    for (i, case) in cases.iter().enumerate() {
        let expected = decided_prefix(case);
        assert_eq!(
            &batched[i][..expected.len()],
            expected,
            "case {i} in a batch"
        );
    }
}

#[test]
fn t5_batch_gives_each_input_its_solo_output() {
    let (_dir, model) = load("t5-tiny", Quantization::Float32, ComputeType::Float32);
    let cases = cases("t5");
    let requests: Vec<_> = cases
        .iter()
        .map(|c| greedy(&c.prompt, c.greedy.len()))
        .collect();
    let batched = run(&model, &requests);
    for (i, case) in cases.iter().enumerate() {
        let expected = decided_prefix(case);
        assert_eq!(
            &batched[i][..expected.len()],
            expected,
            "case {i} in a batch"
        );
    }
}

/// CTranslate2 Python's int8 outputs, one file per int8 GEMM it was run with: MKL (Intel
/// CPUs; `golden.json`) and oneDNN on an AVX2-only CPU, whose int8 kernels round
/// differently and change these random models' greedy tokens within a few steps. ct2rs is
/// built with oneDNN: on AVX-512 VNNI machines it has been seen to match MKL's outputs, on
/// AVX2-only ones the wheel's oneDNN outputs there.
const INT8_REFERENCES: [&str; 2] = ["golden.json", "ct2-reference/int8-onednn-avx2.json"];

/// CTranslate2 Python's int8 greedy ids recorded in `file` (T5's references have tokens:
/// mapped through the converted vocabulary).
fn int8_reference(file: &str, model: &str, ct2: &Ct2Model) -> Vec<Vec<u32>> {
    let bytes = std::fs::read(fixtures().join(file)).expect("read the int8 reference");
    let reference: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    reference["models"][model]["ctranslate2"]["int8_float16"]["cases"]
        .as_array()
        .expect("int8 cases")
        .iter()
        .map(|c| match c.get("greedy_ids") {
            Some(v) if !v.is_null() => ids(v),
            _ => c["greedy_tokens"]
                .as_array()
                .expect("greedy_tokens")
                .iter()
                .map(|t| {
                    let t = t.as_str().expect("token");
                    (0..ct2.vocab_size() as u32)
                        .find(|&id| ct2.token(id) == Some(t))
                        .unwrap_or_else(|| panic!("token {t:?} not in vocabulary"))
                })
                .collect(),
        })
        .collect()
}

/// Runs every golden prompt on our int8_float16 conversion, requested as int8_float16 on
/// CPU, and returns (cases equal to the CTranslate2 Python int8 reference they agree with
/// most, cases, report lines).
fn int8_agreement(name: &str, golden_name: &str) -> (usize, usize, Vec<String>) {
    let (_dir, model) = load(name, Quantization::Int8Float16, ComputeType::Int8Float16);
    assert_eq!(model.requested_compute_type(), ComputeType::Int8Float16);
    assert_eq!(
        model.compute_type(),
        ComputeType::Int8Float32,
        "CPU has no float16"
    );
    let cases = cases(golden_name);
    let outputs: Vec<Vec<u32>> = cases
        .iter()
        .map(|case| run(&model, &[greedy(&case.prompt, 24)]).remove(0))
        .collect();
    let mut best = (0, Vec::new());
    for file in INT8_REFERENCES {
        let expected = int8_reference(file, golden_name, &model);
        let mut equal = 0;
        let mut report = Vec::new();
        for (i, (out, expected)) in outputs.iter().zip(&expected).enumerate() {
            if out == expected {
                equal += 1;
            } else {
                let first = out.iter().zip(expected).take_while(|(a, b)| a == b).count();
                report.push(format!(
                    "{name} case {i}: differs from {file} at step {first}"
                ));
            }
        }
        report.push(format!("{equal}/{} equal {file}", cases.len()));
        if equal >= best.0 {
            best = (equal, report);
        }
    }
    (best.0, cases.len(), best.1)
}

#[test]
fn gpt2_int8_greedy_equals_ctranslate2_python_int8_output() {
    let (equal, total, report) = int8_agreement("gpt2-tiny", "gpt2");
    eprintln!("gpt2 int8: {equal}/{total} cases equal {report:?}");
    assert_eq!(equal, total, "{report:?}");
}

#[test]
fn t5_int8_greedy_equals_ctranslate2_python_int8_output_in_four_of_five_cases() {
    let (equal, total, report) = int8_agreement("t5-tiny", "t5");
    eprintln!("t5 int8: {equal}/{total} cases equal {report:?}");
    // On AVX-512 machines case 0 differs from MKL's output from step 9: under the wheel the
    // two candidates there are 0.086 apart in log-probability (docs/ctranslate2.md).
    assert!(equal >= total - 1, "{report:?}");
}

#[test]
fn each_request_stops_at_its_own_max_new_tokens_and_zero_returns_nothing() {
    let (_dir, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float32);
    let case = &cases("gpt2")[0];
    let outputs = model
        .generate(
            &[
                greedy(&case.prompt, 3),
                greedy(&case.prompt, 7),
                greedy(&case.prompt, 0),
            ],
            &mut |_| StepControl::Continue,
        )
        .unwrap();
    assert_eq!(outputs[0].token_ids, case.greedy[..3]);
    assert_eq!(outputs[1].token_ids, case.greedy[..7]);
    assert!(outputs[2].token_ids.is_empty());
    assert!(outputs.iter().all(|o| o.finish == Ct2Finish::Length));
}

#[test]
fn step_callback_streams_every_token_in_order_and_can_stop_one_request() {
    let (_dir, model) = load("t5-tiny", Quantization::Float32, ComputeType::Float32);
    let cases = cases("t5");
    let mut events: Vec<StepEvent> = Vec::new();
    let outputs = model
        .generate(
            &[greedy(&cases[0].prompt, 10), greedy(&cases[1].prompt, 10)],
            &mut |event| {
                events.push(event);
                if event.request == 0 && event.step == 3 {
                    StepControl::Stop
                } else {
                    StepControl::Continue
                }
            },
        )
        .unwrap();
    assert_eq!(outputs[0].finish, Ct2Finish::Stopped);
    assert_eq!(outputs[0].token_ids, cases[0].greedy[..4]);
    assert_eq!(outputs[1].finish, Ct2Finish::Length);
    assert_eq!(outputs[1].token_ids, cases[1].greedy[..10]);
    for (request, output) in outputs.iter().enumerate() {
        let streamed: Vec<u32> = events
            .iter()
            .filter(|e| e.request == request)
            .map(|e| e.token_id)
            .collect();
        assert_eq!(&streamed, &output.token_ids, "request {request}");
        let steps: Vec<usize> = events
            .iter()
            .filter(|e| e.request == request)
            .map(|e| e.step)
            .collect();
        assert_eq!(steps, (0..output.token_ids.len()).collect::<Vec<_>>());
    }
}

#[test]
fn eos_ends_a_request_even_as_the_first_token_and_is_not_part_of_the_output() {
    // t5-tiny answers case 0 with token 11447 first (logit 22.5); doubling that row into
    // the head's </s> row makes </s> the clear argmax of the first step.
    let case = &cases("t5")[0];
    let first = case.greedy[0] as usize;
    let src = derived_checkpoint(
        "t5-tiny",
        "ct2-eos",
        |_| {},
        |tensors| {
            let (shape, head) = tensors.get_mut("lm_head.weight").expect("untied head");
            let d = shape[1];
            let row: Vec<f32> = head[first * d..(first + 1) * d]
                .iter()
                .map(|v| 2.0 * v)
                .collect();
            head[d..2 * d].copy_from_slice(&row); // </s> is id 1
        },
    );
    let out_dir = Scratch::new("ct2-eos-out");
    let converted = convert(src.path(), out_dir.path(), Quantization::Float32).unwrap();
    let model = Ct2Model::load(
        &converted.dir,
        converted.architecture,
        &cpu(ComputeType::Float32),
    )
    .unwrap();
    let eos = model.eos_token_id();
    assert_eq!((eos, model.token(eos)), (1, Some("</s>")));
    let mut events = Vec::new();
    let out = model
        .generate(&[greedy(&case.prompt, 24)], &mut |e| {
            events.push(e);
            StepControl::Continue
        })
        .unwrap()
        .remove(0);
    assert_eq!(out.finish, Ct2Finish::Eos);
    assert!(out.token_ids.is_empty());
    assert_eq!(events.len(), 1);
    assert!(events[0].is_eos && events[0].token_id == eos && events[0].step == 0);
}

#[test]
fn tied_t5_uses_the_shared_embedding_as_head_and_stores_the_output_scale() {
    // transformers multiplies the decoder output by d_model^-0.5 when the head is tied.
    // Greedy decoding cannot see a positive logit scale, so the scale is checked in
    // model.bin and the decoding against an untied head equal to the shared embedding.
    let tied = derived_checkpoint(
        "t5-tiny",
        "ct2-tied",
        |config| config["tie_word_embeddings"] = true.into(),
        |tensors| {
            tensors.remove("lm_head.weight");
        },
    );
    let untied = derived_checkpoint(
        "t5-tiny",
        "ct2-untied",
        |_| {},
        |tensors| {
            let shared = tensors["shared.weight"].clone();
            tensors.insert("lm_head.weight".into(), shared);
        },
    );
    let mut outputs = Vec::new();
    for (src, is_tied) in [(&tied, true), (&untied, false)] {
        let out_dir = Scratch::new("ct2-tied-out");
        let converted = convert(src.path(), out_dir.path(), Quantization::Float32).unwrap();
        let bin = runtime::ct2::ModelBin::parse(
            &std::fs::read(out_dir.path().join("model.bin")).unwrap(),
        )
        .unwrap();
        let head_alias = (
            "decoder/projection/weight".to_string(),
            "decoder/embeddings/weight".to_string(),
        );
        assert!(
            bin.aliases.contains(&head_alias),
            "head is the shared embedding"
        );
        let scale = bin
            .variable("decoder/scale_outputs")
            .map(|v| v.data.clone());
        let expected = is_tied.then(|| (32f32).powf(-0.5).to_le_bytes().to_vec());
        assert_eq!(scale, expected, "scale_outputs only for a tied head");
        let model = Ct2Model::load(
            &converted.dir,
            converted.architecture,
            &cpu(ComputeType::Float32),
        )
        .unwrap();
        let requests: Vec<_> = cases("t5").iter().map(|c| greedy(&c.prompt, 24)).collect();
        outputs.push(run(&model, &requests));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(outputs[0].iter().all(|o| o.len() == 24));
}

#[test]
fn relu_t5_converts_and_its_greedy_output_equals_transformers_golden_output() {
    // t5-v1_0-tiny is a T5 v1.0: relu feed-forward (`wi`, not the gated `wi_0`/`wi_1`).
    let out_dir = Scratch::new("ct2-relu-out");
    let converted = convert(
        &fixtures().join("t5-v1_0-tiny"),
        out_dir.path(),
        Quantization::Float32,
    )
    .unwrap();
    let bin =
        runtime::ct2::ModelBin::parse(&std::fs::read(out_dir.path().join("model.bin")).unwrap())
            .unwrap();
    let activation = bin.variable("encoder/activation").unwrap();
    assert_eq!(activation.data, vec![0], "relu is CTranslate2 activation 0");
    assert!(bin
        .variables
        .iter()
        .all(|v| !v.name.contains("linear_0_noact")));
    let model = Ct2Model::load(
        &converted.dir,
        converted.architecture,
        &cpu(ComputeType::Float32),
    )
    .unwrap();
    let bytes = std::fs::read(fixtures().join("t5-v1_0-tiny/golden.json")).unwrap();
    let golden: Value = serde_json::from_slice(&bytes).unwrap();
    let cases = golden["model"]["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for (i, case) in cases.iter().map(case_of).enumerate() {
        let out = &run(&model, &[greedy(&case.prompt, case.greedy.len())])[0];
        let expected = decided_prefix(&case);
        assert!(!expected.is_empty(), "case {i} decides at least one token");
        assert_eq!(&out[..expected.len()], expected, "t5-v1_0-tiny case {i}");
    }
}

/// Logits within this of each other may swap ranks between CTranslate2 and candle.
const RANK_TOLERANCE: f32 = 1e-4;

/// Whether `token` is among the `k` most likely under `logits`, up to [`RANK_TOLERANCE`].
fn within_top_k(logits: &[f32], token: u32, k: usize) -> bool {
    let mine = logits[token as usize];
    logits
        .iter()
        .filter(|&&l| l > mine + RANK_TOLERANCE)
        .count()
        < k
}

#[test]
fn sampling_draws_every_token_within_the_top_k_of_its_step() {
    let (_dir, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float32);
    let case = &cases("gpt2")[0];
    let request = Ct2Request {
        prompt: case.prompt.clone(),
        max_new_tokens: 16,
        sampling: Ct2Sampling {
            temperature: 1.0,
            top_k: 5,
            top_p: 1.0,
        },
        logprobs: false,
    };
    let out = model
        .generate(&[request], &mut |_| StepControl::Continue)
        .unwrap();
    let sampled = &out[0].token_ids;
    assert_eq!(sampled.len(), 16);
    // Each step's logits from the same checkpoint run in candle (which matches the Hugging
    // Face reference logits, see the models tests), fed the tokens CTranslate2 drew.
    let dir =
        runtime::checkpoint::Checkpoint::open(fixtures().join("gpt2-tiny")).expect("fixture opens");
    let candle = dir
        .load_model(&candle_core::Device::Cpu, candle_core::DType::F32)
        .expect("fixture loads");
    let mut slot = candle.new_slot().expect("slot");
    let mut logits = candle.prefill(&mut slot, &case.prompt).expect("prefill");
    for (step, &token) in sampled.iter().enumerate() {
        assert!(
            within_top_k(&logits, token, 5),
            "step {step}: {token} is not among the 5 most likely tokens of its step ({sampled:?})"
        );
        logits = candle.decode(&mut [&mut slot], &[token]).expect("decode");
    }
}

#[test]
fn out_of_vocabulary_prompt_ids_and_bad_options_are_refused_with_the_request_index() {
    let (_dir, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float32);
    let err = model
        .generate(&[greedy(&[1], 1), greedy(&[60_000], 1)], &mut |_| {
            StepControl::Continue
        })
        .unwrap_err();
    assert!(err.to_string().contains("request 1"), "{err}");
    assert!(err.to_string().contains("60000"), "{err}");
    let bad = Ct2Request {
        prompt: vec![1],
        max_new_tokens: 1,
        sampling: Ct2Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.5,
        },
        logprobs: false,
    };
    let err = model
        .generate(&[bad], &mut |_| StepControl::Continue)
        .unwrap_err();
    assert!(err.to_string().contains("top_p"), "{err}");
    let err = model
        .generate(&[greedy(&[], 1)], &mut |_| StepControl::Continue)
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn architecture_and_compute_types_are_reported() {
    let (_dir, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float16);
    assert_eq!(model.architecture(), Architecture::Gpt2);
    assert_eq!(model.requested_compute_type(), ComputeType::Float16);
    assert_eq!(model.compute_type(), ComputeType::Float32);
}
