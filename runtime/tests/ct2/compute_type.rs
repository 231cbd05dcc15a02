//! The compute type reported is the one CTranslate2 runs: CTranslate2 refuses an explicit
//! type the device cannot run, so every type the backend resolves must load as given.

use crate::common::Scratch;
use references::{fixtures_dir, golden_cases, GoldenCase};
use runtime::ct2::{
    convert, effective_compute_type, ComputeType, Ct2Device, Ct2LoadOptions, Ct2Model, Ct2Request,
    Ct2Sampling, Quantization, StepControl,
};

#[test]
fn ctranslate2_itself_refuses_int8_float16_on_cpu_instead_of_falling_back() {
    let dir = Scratch::new("ct2-refuse");
    convert(
        &fixtures_dir().join("gpt2-tiny"),
        dir.path(),
        Quantization::Int8Float16,
    )
    .unwrap();
    let config = ct2rs::Config {
        compute_type: ct2rs::ComputeType::INT8_FLOAT16,
        ..Default::default()
    };
    let err = ct2rs::sys::Generator::new(dir.path(), &config).unwrap_err();
    assert!(err.to_string().contains("int8_float16"), "{err}");
}

/// Transformers' float32 greedy continuation of each reference prompt.
fn greedy_outputs(model: &Ct2Model, references: &[GoldenCase]) -> Vec<Vec<u32>> {
    references
        .iter()
        .map(|reference| {
            let request = Ct2Request {
                prompt: reference.prompt_ids.clone(),
                max_new_tokens: reference.greedy_ids.len(),
                sampling: Ct2Sampling::GREEDY,
                logprobs: false,
            };
            model
                .generate(&[request], &mut |_| StepControl::Continue)
                .expect("generate")
                .remove(0)
                .token_ids
        })
        .collect()
}

/// Every type the backend can be asked for loads on the CPU, and the type it then reports
/// is the one CTranslate2 computes with, seen in what the model generates: a float32
/// conversion run in float32 gives transformers' float32 greedy tokens, and run with int8
/// weights departs from them (int8 rounding changes these random models' greedy tokens
/// within a few steps on every int8 GEMM tried, see `ct2-reference/`).
#[test]
fn every_requested_compute_type_loads_on_cpu_and_computes_in_the_type_it_reports() {
    for (model, quantization) in [
        ("gpt2-tiny", Quantization::Float32),
        ("gpt2-tiny", Quantization::Int8Float16),
        ("t5-tiny", Quantization::Float32),
        ("t5-tiny", Quantization::Int8Float16),
    ] {
        let references = golden_cases(model);
        let dir = Scratch::new("ct2-types");
        let converted = convert(&fixtures_dir().join(model), dir.path(), quantization).unwrap();
        for requested in ComputeType::ALL {
            let options = Ct2LoadOptions {
                device: Ct2Device::Cpu,
                device_index: 0,
                compute_type: requested,
                threads: 1,
            };
            let loaded = Ct2Model::load(&converted.dir, converted.architecture, &options)
                .unwrap_or_else(|e| panic!("{model} {quantization} as {requested}: {e}"));
            let reported = loaded.compute_type();
            assert_eq!(loaded.requested_compute_type(), requested);
            assert_eq!(
                reported,
                effective_compute_type(requested, Ct2Device::Cpu, converted.architecture)
            );
            // Never a type CTranslate2 would resolve again on its own.
            assert!(
                !matches!(reported, ComputeType::Auto | ComputeType::Int8),
                "{reported}"
            );
            if quantization != Quantization::Float32 {
                continue; // int8 weights depart from the float32 reference whatever the type
            }
            let outputs = greedy_outputs(&loaded, &references);
            let what =
                format!("{model} {quantization} requested as {requested}, reported {reported}");
            match reported {
                ComputeType::Float32 => {
                    for (output, reference) in outputs.iter().zip(&references) {
                        let decided = reference.decided_ids();
                        assert_eq!(output.get(..decided.len()), Some(decided), "{what}");
                    }
                }
                ComputeType::Int8Float32 | ComputeType::Int8Bfloat16 => {
                    let float32: Vec<&Vec<u32>> =
                        references.iter().map(|r| &r.greedy_ids).collect();
                    let outputs: Vec<&Vec<u32>> = outputs.iter().collect();
                    assert_ne!(outputs, float32, "{what}: int8 weights leave a trace")
                }
                _ => {} // int16, bfloat16: no reference to tell them apart
            }
        }
    }
}
