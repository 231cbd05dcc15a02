//! The conversion cache reuses a valid converted model and rebuilds an invalid one.

use crate::common::{manifest_of, sha256_file, Scratch};
use references::fixtures_dir;
use runtime::checkpoint::Checkpoint;
use runtime::ct2::{source_key, ConversionCache, Quantization};

const GPT2_FLOAT32_MODEL_BIN: &str =
    "f4e547d95716327d30e3e6d7859b9b3b06ea626c0269dfc29330abdcd712c988";

#[test]
fn second_request_for_the_same_source_and_quantization_is_a_cache_hit() {
    let state = Scratch::new("ct2-cache");
    let cache = ConversionCache::new(state.path());
    let source = fixtures_dir().join("gpt2-tiny");
    let first = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    assert!(!first.cache_hit);
    assert_eq!(first.rebuilt_because, None);
    assert!(first.model.dir.starts_with(state.path()));
    let second = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.model, first.model);
    assert_eq!(
        sha256_file(&second.model.dir.join("model.bin")),
        GPT2_FLOAT32_MODEL_BIN
    );
}

#[test]
fn a_corrupted_model_file_is_detected_and_rebuilt() {
    let state = Scratch::new("ct2-cache-corrupt");
    let cache = ConversionCache::new(state.path());
    let source = fixtures_dir().join("gpt2-tiny");
    let first = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    let bin = first.model.dir.join("model.bin");
    let mut bytes = std::fs::read(&bin).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40; // same size, different content
    std::fs::write(&bin, bytes).unwrap();

    let rebuilt = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    assert!(!rebuilt.cache_hit);
    let reason = rebuilt.rebuilt_because.expect("a reason");
    assert!(reason.contains("model.bin"), "{reason}");
    assert_eq!(sha256_file(&bin), GPT2_FLOAT32_MODEL_BIN);
    assert!(
        cache
            .get_or_convert(&source, Quantization::Float32)
            .unwrap()
            .cache_hit
    );
}

#[test]
fn an_entry_without_its_manifest_is_a_partial_conversion_and_is_rebuilt() {
    let state = Scratch::new("ct2-cache-partial");
    let cache = ConversionCache::new(state.path());
    let source = fixtures_dir().join("t5-tiny");
    let first = cache
        .get_or_convert(&source, Quantization::Int8Float16)
        .unwrap();
    std::fs::remove_file(first.model.dir.join("manifest.json")).unwrap();
    std::fs::remove_file(first.model.dir.join("shared_vocabulary.json")).unwrap();

    let rebuilt = cache
        .get_or_convert(&source, Quantization::Int8Float16)
        .unwrap();
    assert!(!rebuilt.cache_hit);
    assert!(rebuilt.rebuilt_because.unwrap().contains("manifest.json"));
    assert!(rebuilt.model.dir.join("shared_vocabulary.json").is_file());
    assert!(
        cache
            .get_or_convert(&source, Quantization::Int8Float16)
            .unwrap()
            .cache_hit
    );
}

#[test]
fn a_truncated_file_is_detected_by_its_size() {
    let state = Scratch::new("ct2-cache-truncated");
    let cache = ConversionCache::new(state.path());
    let source = fixtures_dir().join("gpt2-tiny");
    let first = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    let vocab = first.model.dir.join("vocabulary.json");
    let bytes = std::fs::read(&vocab).unwrap();
    std::fs::write(&vocab, &bytes[..bytes.len() - 10]).unwrap();
    let rebuilt = cache
        .get_or_convert(&source, Quantization::Float32)
        .unwrap();
    assert!(!rebuilt.cache_hit);
    assert!(rebuilt
        .rebuilt_because
        .unwrap()
        .contains("vocabulary.json has"));
}

#[test]
fn quantization_and_source_content_are_part_of_the_key() {
    let gpt2 = fixtures_dir().join("gpt2-tiny");
    let float32 = source_key(&gpt2, Quantization::Float32).unwrap();
    assert_ne!(
        float32,
        source_key(&gpt2, Quantization::Int8Float16).unwrap()
    );
    assert_eq!(float32, source_key(&gpt2, Quantization::Float32).unwrap());

    // The same files with one config byte changed make another key.
    let copy = Scratch::new("ct2-cache-key");
    for entry in std::fs::read_dir(&gpt2).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    assert_eq!(
        source_key(copy.path(), Quantization::Float32).unwrap(),
        float32
    );
    let config = copy.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("\"n_positions\": 128", "\"n_positions\": 127"),
    )
    .unwrap();
    assert_ne!(
        source_key(copy.path(), Quantization::Float32).unwrap(),
        float32
    );
}

#[test]
fn a_failed_conversion_leaves_no_entry_behind() {
    let state = Scratch::new("ct2-cache-fail");
    let cache = ConversionCache::new(state.path());
    let source = Scratch::new("ct2-cache-bad-source");
    std::fs::copy(
        fixtures_dir().join("gpt2-tiny/config.json"),
        source.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(source.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = cache
        .get_or_convert(source.path(), Quantization::Float32)
        .unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    let left = std::fs::read_dir(cache.root())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "no entry and no staging directory remain");
}

#[test]
fn an_opened_checkpoint_converts_and_keys_exactly_as_its_directory() {
    for (name, quantization) in [
        ("gpt2-tiny", Quantization::Float32),
        ("t5-tiny", Quantization::Int8Float16),
    ] {
        let source = fixtures_dir().join(name);
        let checkpoint = Checkpoint::open(&source).unwrap();
        let by_dir = Scratch::new("ct2-cache-dir");
        let by_checkpoint = Scratch::new("ct2-cache-opened");
        let from_dir = ConversionCache::new(by_dir.path())
            .get_or_convert(&source, quantization)
            .unwrap();
        let from_checkpoint = ConversionCache::new(by_checkpoint.path())
            .get_or_convert(&checkpoint, quantization)
            .unwrap();
        assert_eq!(from_checkpoint.key, from_dir.key, "{name}");
        assert_eq!(
            from_checkpoint.model.architecture,
            from_dir.model.architecture
        );
        assert_eq!(
            manifest_of(&from_checkpoint.model.dir),
            manifest_of(&from_dir.model.dir),
            "{name}: the converted files differ"
        );
        let rebuilt = ConversionCache::new(by_checkpoint.path())
            .rebuild(&checkpoint, quantization)
            .unwrap();
        assert!(!rebuilt.cache_hit);
        assert_eq!(rebuilt.key, from_dir.key);
    }
}
