//! The native HF → CTranslate2 converter produces the same files as CTranslate2 4.8.5's
//! own converter (run with transformers 4.57.3) on the tiny fixtures.

use crate::common::{
    assert_matches_reference, fixture_tensors, fixture_without_weights, representable, sha256_file,
    write_weights, Scratch,
};
use references::fixtures_dir;
use runtime::ct2::{convert, Architecture, ConvertError, DataType, ModelBin, Quantization};
use safetensors::Dtype;

/// SHA-256 of the files CTranslate2's converter wrote (shared/fixtures/reference/*/ct2-*).
const REFERENCE: &[(&str, &str, &str, &str)] = &[
    (
        "gpt2-tiny",
        "float32",
        "model.bin",
        "f4e547d95716327d30e3e6d7859b9b3b06ea626c0269dfc29330abdcd712c988",
    ),
    (
        "gpt2-tiny",
        "float32",
        "config.json",
        "c95fd0b55c068d54a4e20781247aed111c154881fae591b42903d3791d9a943e",
    ),
    (
        "gpt2-tiny",
        "float32",
        "vocabulary.json",
        "4997256c3ff9a1918951dbcac32d6435a4eb0994b7b59f4a799e5b8156d12b90",
    ),
    (
        "gpt2-tiny",
        "int8_float16",
        "model.bin",
        "92641573fe7aa12873a6f006aedf3ff2d408b61d879315357b903504232200bc",
    ),
    (
        "gpt2-tiny",
        "int8_float16",
        "config.json",
        "c95fd0b55c068d54a4e20781247aed111c154881fae591b42903d3791d9a943e",
    ),
    (
        "gpt2-tiny",
        "int8_float16",
        "vocabulary.json",
        "4997256c3ff9a1918951dbcac32d6435a4eb0994b7b59f4a799e5b8156d12b90",
    ),
    (
        "t5-tiny",
        "float32",
        "model.bin",
        "0583dfb8ba9c0ef4d13df963608d5f4a891e09517408f9acb801b75c27c7c69d",
    ),
    (
        "t5-tiny",
        "float32",
        "config.json",
        "99fa08f9ae4fe585ace28258a3420d4d19d59e2b99d3e8dd2bc7dff70aa408cf",
    ),
    (
        "t5-tiny",
        "float32",
        "shared_vocabulary.json",
        "2410c4e49b50c4d7ea09e7555f86c3a40dd39d9f4cc922cf32e7a2a0597d85cb",
    ),
    (
        "t5-tiny",
        "int8_float16",
        "model.bin",
        "35d945d81f4148234cd9ddbd9aad2bc016403355b4001d9165e9dbff7ab35286",
    ),
    (
        "t5-tiny",
        "int8_float16",
        "config.json",
        "99fa08f9ae4fe585ace28258a3420d4d19d59e2b99d3e8dd2bc7dff70aa408cf",
    ),
    (
        "t5-tiny",
        "int8_float16",
        "shared_vocabulary.json",
        "2410c4e49b50c4d7ea09e7555f86c3a40dd39d9f4cc922cf32e7a2a0597d85cb",
    ),
];

fn assert_identical_to_reference(model: &str, quantization: Quantization) {
    let out = Scratch::new("ct2-convert");
    convert(&fixtures_dir().join(model), out.path(), quantization).expect("conversion succeeds");
    // Variable-level first: a mismatch names the variable, not just the file.
    assert_matches_reference(out.path(), &format!("{model}.{quantization}"));
    let expected: Vec<_> = REFERENCE
        .iter()
        .filter(|(m, q, _, _)| *m == model && *q == quantization.name())
        .collect();
    assert_eq!(expected.len(), 3);
    for (_, _, file, sha) in expected {
        assert_eq!(
            &sha256_file(&out.path().join(file)),
            sha,
            "{model} {quantization} {file}"
        );
    }
    let mut files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "exactly the three files CTranslate2 writes: {files:?}"
    );
}

#[test]
fn gpt2_float32_conversion_is_byte_identical_to_ctranslate2s_converter() {
    assert_identical_to_reference("gpt2-tiny", Quantization::Float32);
}

#[test]
fn t5_float32_conversion_is_byte_identical_to_ctranslate2s_converter() {
    assert_identical_to_reference("t5-tiny", Quantization::Float32);
}

#[test]
fn gpt2_int8_float16_conversion_is_byte_identical_to_ctranslate2s_converter() {
    assert_identical_to_reference("gpt2-tiny", Quantization::Int8Float16);
}

#[test]
fn t5_int8_float16_conversion_is_byte_identical_to_ctranslate2s_converter() {
    assert_identical_to_reference("t5-tiny", Quantization::Int8Float16);
}

#[test]
fn t5_later_layers_store_the_relative_attention_bias_as_an_alias_of_layer_0() {
    let out = Scratch::new("ct2-alias");
    convert(
        &fixtures_dir().join("t5-tiny"),
        out.path(),
        Quantization::Float32,
    )
    .unwrap();
    let model = ModelBin::parse(&std::fs::read(out.path().join("model.bin")).unwrap()).unwrap();
    for stack in ["encoder", "decoder"] {
        let alias = format!("{stack}/layer_1/self_attention/relative_attention_bias");
        let target = format!("{stack}/layer_0/self_attention/relative_attention_bias");
        assert!(
            model.aliases.contains(&(alias.clone(), target.clone())),
            "{alias}"
        );
        let bias = model.variable(&target).expect("layer 0 keeps the bias");
        assert_eq!(
            (bias.shape.as_slice(), bias.dtype),
            (&[32, 4][..], DataType::Float32)
        );
        assert!(model.variable(&alias).is_none());
    }
}

#[test]
fn architecture_is_read_from_the_checkpoint_config() {
    assert_eq!(
        Architecture::of_checkpoint(&fixtures_dir().join("gpt2-tiny")).unwrap(),
        Architecture::Gpt2
    );
    assert_eq!(
        Architecture::of_checkpoint(&fixtures_dir().join("t5-tiny")).unwrap(),
        Architecture::T5
    );
}

#[test]
fn unsupported_architecture_is_refused_with_its_name() {
    let src = Scratch::new("ct2-bert");
    std::fs::write(
        src.path().join("config.json"),
        r#"{"architectures": ["BertModel"], "model_type": "bert"}"#,
    )
    .unwrap();
    let out = Scratch::new("ct2-bert-out");
    let err = convert(src.path(), out.path(), Quantization::Float32).unwrap_err();
    assert!(
        matches!(err, ConvertError::UnsupportedArchitecture { ref found, .. } if found == "BertModel"),
        "{err}"
    );
    assert!(err.to_string().contains("GPT2LMHeadModel"), "{err}");
}

#[test]
fn missing_weights_file_is_an_error_naming_the_file() {
    let src = Scratch::new("ct2-noweights");
    std::fs::copy(
        fixtures_dir().join("gpt2-tiny/config.json"),
        src.path().join("config.json"),
    )
    .unwrap();
    let out = Scratch::new("ct2-noweights-out");
    let err = convert(src.path(), out.path(), Quantization::Float32).unwrap_err();
    assert!(
        err.to_string().contains("model.safetensors.index.json"),
        "{err}"
    );
}

#[test]
fn sharded_checkpoint_converts_to_the_same_files_as_a_single_file() {
    let src = fixture_without_weights("gpt2-tiny", "ct2-sharded");
    write_weights(src.path(), &fixture_tensors("gpt2-tiny"), Dtype::F32, 3);
    assert!(src
        .path()
        .join("model-00003-of-00003.safetensors")
        .is_file());
    let out = Scratch::new("ct2-sharded-out");
    convert(src.path(), out.path(), Quantization::Float32).unwrap();
    assert_matches_reference(out.path(), "gpt2-tiny.float32");
}

#[test]
fn half_and_bfloat16_checkpoints_are_read_exactly() {
    for dtype in [Dtype::F16, Dtype::BF16] {
        let mut tensors = fixture_tensors("t5-tiny");
        for (_, values) in tensors.values_mut() {
            values
                .iter_mut()
                .for_each(|v| *v = representable(*v, dtype));
        }
        let narrow = fixture_without_weights("t5-tiny", "ct2-narrow");
        write_weights(narrow.path(), &tensors, dtype, 1);
        let wide = fixture_without_weights("t5-tiny", "ct2-wide");
        write_weights(wide.path(), &tensors, Dtype::F32, 1);
        let (a, b) = (Scratch::new("ct2-narrow-out"), Scratch::new("ct2-wide-out"));
        convert(narrow.path(), a.path(), Quantization::Float32).unwrap();
        convert(wide.path(), b.path(), Quantization::Float32).unwrap();
        let bin = |dir: &Scratch| std::fs::read(dir.path().join("model.bin")).unwrap();
        assert!(
            bin(&a) == bin(&b),
            "{dtype:?} checkpoint converts like its float32 twin"
        );
    }
}
