//! Model directories are validated before anything is loaded; a broken one is an error that
//! names the file and what was expected, never a panic.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use runtime::checkpoint::{Checkpoint, LoadError};
use runtime::model::Architecture;
use tempfile::TempDir;

use references::model_path;

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
    match Checkpoint::open(dir) {
        Ok(dir) => panic!("expected an error, opened {dir:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fixture_directories_open_with_their_architecture() {
    let gpt2 = Checkpoint::open(model_path("gpt2-tiny")).expect("gpt2-tiny opens");
    assert_eq!(gpt2.architecture(), Architecture::Gpt2);
    assert_eq!(gpt2.eos_token_id(), 50256);
    let t5 = Checkpoint::open(model_path("t5-tiny")).expect("t5-tiny opens");
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
    let error = Checkpoint::open(dir.path()).expect_err("bert is refused");
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
    let error = Checkpoint::open(dir.path()).expect_err("refused");
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
    let gpt2 = Checkpoint::open(model_path("gpt2-tiny")).expect("opens");
    assert_eq!(gpt2.weights_bytes(DType::F32), 1_637_792 * 4);
    assert_eq!(gpt2.weights_bytes(DType::F16), 1_637_792 * 2);
    assert_eq!(gpt2.kv_bytes_per_slot(DType::F32), 2 * 2 * 128 * 32 * 4);
    // t5-tiny: 2,105,984 parameters; decoder self K/V for 512 steps plus cross K/V for 512
    // encoder tokens, 2 decoder layers of 4 heads × 8.
    let t5 = Checkpoint::open(model_path("t5-tiny")).expect("opens");
    assert_eq!(t5.weights_bytes(DType::F32), 2_105_984 * 4);
    assert_eq!(
        t5.kv_bytes_per_slot(DType::F16),
        2 * 2 * (512 + 512) * 32 * 2
    );
}

/// Rewrites the copy's `model.safetensors` with `edit` applied to its tensors.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("weights load");
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).expect("weights save");
}

fn load_err(dir: &Path) -> LoadError {
    let model_dir = Checkpoint::open(dir).expect("the directory itself is valid");
    match model_dir.load_model(&Device::Cpu, DType::F32) {
        Ok(_) => panic!("expected the model to be refused"),
        Err(e) => e,
    }
}

#[test]
fn wrong_shape_tensor_names_the_tensor_and_both_shapes() {
    let dir = copy_of("gpt2-tiny");
    let name = "transformer.h.1.attn.c_attn.weight";
    edit_weights(dir.path(), |tensors| {
        let wrong = Tensor::zeros((32, 95), DType::F32, &Device::Cpu).expect("zeros");
        tensors.insert(name.to_string(), wrong);
    });
    let error = load_err(dir.path());
    assert!(matches!(error, LoadError::TensorShape { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(name), "{message}");
    assert!(
        message.contains("[32, 96]") && message.contains("[32, 95]"),
        "{message}"
    );
}

#[test]
fn missing_tensor_names_the_tensor_and_its_expected_shape() {
    let dir = copy_of("t5-tiny");
    let name = "decoder.block.1.layer.1.EncDecAttention.k.weight";
    edit_weights(dir.path(), |tensors| {
        tensors.remove(name);
    });
    let error = load_err(dir.path());
    assert!(
        matches!(error, LoadError::MissingTensor { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(name) && message.contains("[32, 32]"),
        "{message}"
    );
}

#[test]
fn integer_tensor_is_refused_with_its_dtype() {
    let dir = copy_of("gpt2-tiny");
    let name = "transformer.wpe.weight";
    edit_weights(dir.path(), |tensors| {
        let ints = Tensor::zeros((128, 32), DType::U32, &Device::Cpu).expect("zeros");
        tensors.insert(name.to_string(), ints);
    });
    let message = load_err(dir.path()).to_string();
    assert!(
        message.contains(name) && message.contains("U32"),
        "{message}"
    );
}

#[test]
fn half_precision_on_the_cpu_is_refused() {
    let dir = Checkpoint::open(model_path("gpt2-tiny")).expect("opens");
    match dir.load_model(&Device::Cpu, DType::F16) {
        Ok(_) => panic!("F16 on the CPU must be refused"),
        Err(e) => assert!(matches!(e, LoadError::UnsupportedDtype { .. }), "{e:?}"),
    }
}

#[test]
fn gpt2_weights_load_without_the_transformer_prefix() {
    let dir = copy_of("gpt2-tiny");
    edit_weights(dir.path(), |tensors| {
        let renamed: HashMap<String, Tensor> = tensors
            .drain()
            .map(|(name, t)| (name.trim_start_matches("transformer.").to_string(), t))
            .collect();
        *tensors = renamed;
    });
    let bare = Checkpoint::open(dir.path()).expect("opens");
    let model = bare
        .load_model(&Device::Cpu, DType::F32)
        .expect("bare GPT2Model names load");
    let reference = crate::generation::load_fixture("gpt2-tiny");
    let prompt = [15496, 11, 616, 1438, 318];
    let a = model
        .prefill(&mut model.new_slot().expect("slot"), &prompt)
        .expect("prefill");
    let b = reference
        .prefill(&mut reference.new_slot().expect("slot"), &prompt)
        .expect("prefill");
    assert_eq!(a, b);
}
