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
    generate_json_in(&fixtures().join(model), prompt, extra)
}

fn generate_json_in(dir: &std::path::Path, prompt: &str, extra: &[&str]) -> Value {
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

/// A copy of fixture `model` whose `config.json` names `eos` as its end-of-sequence token.
fn with_eos_token(model: &str, eos: u32) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(fixtures().join(model)).expect("fixture dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, copy.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let config_path = copy.path().join("config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config")).unwrap();
    config["eos_token_id"] = eos.into();
    std::fs::write(&config_path, config.to_string()).expect("write config");
    copy
}

/// The random fixtures never reach their real EOS within 24 tokens, so the test names a
/// token the model does produce as EOS: generation must end right there with `eos`, the
/// EOS id last in `tokens` (as transformers' `generate` returns it) and not in the text.
fn assert_generation_ends_at_eos(model: &str) {
    let case = &golden_cases(model)[0];
    // The first greedy token after the second that did not occur before it.
    let at = (2..case.comparable())
        .find(|&i| !case.greedy_ids[..i].contains(&case.greedy_ids[i]))
        .expect("a fresh token in the comparable part");
    let eos = case.greedy_ids[at];
    let dir = with_eos_token(model, eos);
    let ended = generate_json_in(dir.path(), &case.prompt, &["--max-tokens", "24"]);
    assert_eq!(ended["finishReason"], "eos", "{ended}");
    assert_eq!(ids(&ended["tokens"]), case.greedy_ids[..=at], "{ended}");
    let before = generate_json(model, &case.prompt, &["--max-tokens", &at.to_string()]);
    assert_eq!(ended["text"], before["text"], "the EOS token adds no text");
}

#[test]
fn gpt2_generation_ends_with_eos_when_the_model_emits_its_eos_token() {
    assert_generation_ends_at_eos("gpt2-tiny");
}

#[test]
fn flan_t5_generation_ends_with_eos_when_the_model_emits_its_eos_token() {
    assert_generation_ends_at_eos("t5-tiny");
}

#[test]
fn sampling_flags_with_a_seed_reproduce_and_temperature_0_is_greedy() {
    let case = &golden_cases("gpt2-tiny")[1];
    let sampled = [
        "--max-tokens",
        "16",
        "--temperature",
        "1.5",
        "--top-k",
        "40",
        "--top-p",
        "0.9",
        "--seed",
        "1234",
    ];
    let first = generate_json("gpt2-tiny", &case.prompt, &sampled);
    let again = generate_json("gpt2-tiny", &case.prompt, &sampled);
    assert_eq!(first["seed"], 1234);
    assert_eq!(
        first["tokens"], again["tokens"],
        "the same seed, the same sample"
    );
    let mut other_seed = sampled;
    other_seed[9] = "99";
    let other = generate_json("gpt2-tiny", &case.prompt, &other_seed);
    assert_ne!(
        first["tokens"], other["tokens"],
        "at temperature 1.5 two seeds drawing 16 tokens from this model diverge"
    );
    let greedy = [
        "--max-tokens",
        "24",
        "--temperature",
        "0",
        "--top-k",
        "3",
        "--top-p",
        "0.5",
        "--seed",
        "7",
    ];
    let greedy = generate_json("gpt2-tiny", &case.prompt, &greedy);
    case.assert_matches(&ids(&greedy["tokens"]), "temperature 0 ignores top-k/top-p");
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
