//! Model directories are validated before anything is loaded; a broken one is an error that
//! names the file and what was expected, never a panic.

use std::path::Path;

use candle_core::DType;
use runtime::model::Architecture;
use runtime::model_dir::{LoadError, ModelDir};
use tempfile::TempDir;

use crate::fixtures::model_path;

/// A private copy of a fixture model directory that a test may break.
pub fn copy_of(model: &str) -> TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(model_path(model)).expect("fixture dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
        }
    }
    copy
}

fn open_err(dir: &Path) -> String {
    match ModelDir::open(dir) {
        Ok(dir) => panic!("expected an error, opened {dir:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fixture_directories_open_with_their_architecture() {
    let gpt2 = ModelDir::open(model_path("gpt2-tiny")).expect("gpt2-tiny opens");
    assert_eq!(gpt2.architecture(), Architecture::Gpt2);
    assert_eq!(gpt2.eos_token_id(), 50256);
    let t5 = ModelDir::open(model_path("t5-tiny")).expect("t5-tiny opens");
    assert_eq!(t5.architecture(), Architecture::T5);
    assert_eq!(t5.eos_token_id(), 1);
}

#[test]
fn missing_config_names_config_json() {
    let dir = copy_of("gpt2-tiny");
    std::fs::remove_file(dir.path().join("config.json")).expect("remove");
    let message = open_err(dir.path());
    assert!(message.contains("config.json"), "{message}");
}

#[test]
fn missing_weights_name_model_safetensors() {
    let dir = copy_of("t5-tiny");
    std::fs::remove_file(dir.path().join("model.safetensors")).expect("remove");
    let message = open_err(dir.path());
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn missing_tokenizer_names_the_expected_files() {
    let dir = copy_of("gpt2-tiny");
    std::fs::remove_file(dir.path().join("merges.txt")).expect("remove");
    let message = open_err(dir.path());
    assert!(
        message.contains("vocab.json") && message.contains("merges.txt"),
        "{message}"
    );

    let dir = copy_of("t5-tiny");
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    let message = open_err(dir.path());
    assert!(message.contains("tokenizer.json"), "{message}");
}

#[test]
fn unknown_model_type_names_it_and_the_supported_types() {
    let dir = copy_of("gpt2-tiny");
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, text.replace("\"gpt2\"", "\"bert\"")).expect("write");
    let error = ModelDir::open(dir.path()).expect_err("bert is refused");
    assert!(
        matches!(error, LoadError::UnknownModelType { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("config.json") && message.contains("bert"),
        "{message}"
    );
    assert!(
        message.contains("gpt2") && message.contains("t5"),
        "{message}"
    );
}

#[test]
fn unparsable_config_names_the_file() {
    let dir = copy_of("t5-tiny");
    std::fs::write(dir.path().join("config.json"), "{ not json").expect("write");
    let error = ModelDir::open(dir.path()).expect_err("refused");
    assert!(
        matches!(error, LoadError::UnparsableConfig { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("config.json"), "{error}");
}

#[test]
fn out_of_range_config_field_is_named() {
    let dir = copy_of("gpt2-tiny");
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, text.replace("\"n_head\": 2", "\"n_head\": 3")).expect("write");
    let message = open_err(dir.path());
    assert!(
        message.contains("n_embd") && message.contains("n_head"),
        "{message}"
    );
}

#[test]
fn a_directory_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let message = open_err(&dir.path().join("absent"));
    assert!(message.contains("absent"), "{message}");
}

#[test]
fn memory_estimates_follow_the_checkpoint() {
    // gpt2-tiny: 1,637,792 parameters (lm_head tied to wte); 2 layers × 128 positions × 32.
    let gpt2 = ModelDir::open(model_path("gpt2-tiny")).expect("opens");
    assert_eq!(gpt2.weights_bytes(DType::F32), 1_637_792 * 4);
    assert_eq!(gpt2.weights_bytes(DType::F16), 1_637_792 * 2);
    assert_eq!(gpt2.kv_bytes_per_slot(DType::F32), 2 * 2 * 128 * 32 * 4);
    // t5-tiny: 2,105,984 parameters; decoder self K/V for 512 steps plus cross K/V for 512
    // encoder tokens, 2 decoder layers of 4 heads × 8.
    let t5 = ModelDir::open(model_path("t5-tiny")).expect("opens");
    assert_eq!(t5.weights_bytes(DType::F32), 2_105_984 * 4);
    assert_eq!(
        t5.kv_bytes_per_slot(DType::F16),
        2 * 2 * (512 + 512) * 32 * 2
    );
}
