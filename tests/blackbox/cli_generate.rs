//! `gpu-agent generate`: one local generation through the runtime, no server. Its greedy
//! output is Hugging Face's, token for token, for every reference prompt.

use std::process::Command;

use serde_json::Value;

use crate::support::fixtures;
use crate::support::golden::golden_cases;

fn generate(args: &[&str]) -> std::process::Output {
    Command::new(crate::support::agent_binary())
        .arg("generate")
        .args(args)
        .output()
        .expect("gpu-agent runs")
}

fn generate_json(model: &str, prompt: &str, extra: &[&str]) -> Value {
    let dir = fixtures().join(model);
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec!["--model", dir, "--prompt", prompt, "--json"];
    args.extend_from_slice(extra);
    let output = generate(&args);
    assert!(
        output.status.success(),
        "gpu-agent generate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert_eq!(
        stdout.lines().count(),
        1,
        "--json prints exactly one line: {stdout}"
    );
    serde_json::from_str(&stdout).expect("the line is JSON")
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("an id array")
        .iter()
        .filter_map(Value::as_u64)
        .map(|id| id as u32)
        .collect()
}

fn assert_golden_through_cli(model: &str) {
    for case in golden_cases(model) {
        let out = generate_json(model, &case.prompt, &["--max-tokens", "24"]);
        assert_eq!(
            ids(&out["promptTokens"]),
            case.prompt_ids,
            "{model}: {:?}",
            case.prompt
        );
        case.assert_matches(&ids(&out["tokens"]), model);
        assert_eq!(out["finishReason"], "length");
    }
}

#[test]
fn gpt2_greedy_generation_equals_transformers_for_every_reference_prompt() {
    assert_golden_through_cli("gpt2-tiny");
}

#[test]
fn flan_t5_greedy_generation_equals_transformers_for_every_reference_prompt() {
    assert_golden_through_cli("t5-tiny");
}

#[test]
fn t5_v1_0_relu_tied_head_greedy_generation_equals_transformers() {
    assert_golden_through_cli("t5-v1_0-tiny");
}

#[test]
fn a_stop_sequence_ends_the_text_before_it() {
    let case = &golden_cases("gpt2-tiny")[0];
    let full = generate_json("gpt2-tiny", &case.prompt, &["--max-tokens", "24"]);
    let text = full["text"].as_str().expect("text");
    // A stop string that straddles the second and third generated tokens.
    let first_two = generate_json("gpt2-tiny", &case.prompt, &["--max-tokens", "2"]);
    let prefix = first_two["text"].as_str().expect("text");
    let stop = &text[prefix.len() - 3..prefix.len() + 3];
    let stopped = generate_json(
        "gpt2-tiny",
        &case.prompt,
        &["--max-tokens", "24", "--stop", stop],
    );
    assert_eq!(stopped["finishReason"], "stop_sequence");
    assert_eq!(stopped["text"].as_str(), Some(&text[..prefix.len() - 3]));
}

#[test]
fn without_json_the_text_alone_is_printed() {
    let dir = fixtures().join("gpt2-tiny");
    let output = generate(&[
        "--model",
        dir.to_str().expect("utf-8 path"),
        "--prompt",
        "Hello, my name is",
        "--max-tokens",
        "3",
    ]);
    assert!(output.status.success());
    let json = generate_json("gpt2-tiny", "Hello, my name is", &["--max-tokens", "3"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", json["text"].as_str().expect("text"))
    );
}

#[test]
fn a_malformed_model_directory_is_a_clear_error_not_a_panic() {
    let empty = tempfile::tempdir().expect("temp dir");
    let output = generate(&[
        "--model",
        empty.path().to_str().expect("utf-8 path"),
        "--prompt",
        "hi",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
