//! Shared helpers of the `ct2_*` integration tests: fixture paths, scratch directories,
//! and a variable-by-variable comparison of a converted `model.bin` with the manifest of
//! CTranslate2's own conversion (`tests/fixtures/ct2-reference/*.txt`).

#![allow(dead_code)] // not every helper is used by every module

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runtime::ct2::ModelBin;
use sha2::{Digest, Sha256};

use references::fixtures_dir;

/// A fresh directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "gpu-agent-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// The manifest lines of a model directory: `file NAME SHA256`, `spec NAME REVISION
/// VERSION`, `variable NAME [SHAPE] DTYPE SHA256(DATA)`, `alias NAME TARGET`.
pub fn manifest_of(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read converted dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    for file in &files {
        lines.push(format!("file {file} {}", sha256_file(&dir.join(file))));
    }
    let bytes = std::fs::read(dir.join("model.bin")).expect("read model.bin");
    let model = ModelBin::parse(&bytes).expect("our model.bin parses");
    lines.push(format!(
        "spec {} {} {}",
        model.spec_name,
        model.spec_revision,
        runtime::ct2::BINARY_VERSION
    ));
    for v in &model.variables {
        let shape: Vec<String> = v.shape.iter().map(usize::to_string).collect();
        lines.push(format!(
            "variable {} [{}] {} {}",
            v.name,
            shape.join(","),
            v.dtype.name(),
            hex::encode(Sha256::digest(&v.data))
        ));
    }
    for (alias, target) in &model.aliases {
        lines.push(format!("alias {alias} {target}"));
    }
    lines
}

/// Asserts that `dir` matches the reference manifest `name` line for line; on mismatch
/// the message lists every differing entry (missing, extra, or changed variable).
pub fn assert_matches_reference(dir: &Path, name: &str) {
    let path = fixtures_dir()
        .join("ct2-reference")
        .join(format!("{name}.txt"));
    let expected_text = std::fs::read_to_string(&path).expect("read reference manifest");
    let expected: Vec<String> = expected_text.lines().map(str::to_string).collect();
    let ours = manifest_of(dir);
    if ours == expected {
        return;
    }
    let key = |line: &String| {
        let mut parts = line.splitn(3, ' ');
        let kind = parts.next().unwrap_or("").to_string();
        let name = parts.next().unwrap_or("").to_string();
        (kind, name)
    };
    let index = |lines: &[String]| -> BTreeMap<(String, String), String> {
        lines.iter().map(|l| (key(l), l.clone())).collect()
    };
    let (ours_by_key, reference_by_key) = (index(&ours), index(&expected));
    let mut diff = Vec::new();
    for (k, line) in &reference_by_key {
        match ours_by_key.get(k) {
            None => diff.push(format!("  missing: {line}")),
            Some(our) if our != line => diff.push(format!("  differs: {line}\n     ours: {our}")),
            _ => {}
        }
    }
    for (k, line) in &ours_by_key {
        if !reference_by_key.contains_key(k) {
            diff.push(format!("  extra:   {line}"));
        }
    }
    panic!(
        "{} differs from CTranslate2's conversion ({}):\n{}",
        dir.display(),
        path.display(),
        diff.join("\n")
    );
}

/// Tensors of a checkpoint as float32: name → (shape, values).
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A copy of fixture `source` with `config.json` and the weights edited: real weights,
/// deliberately changed to reach a case the fixture does not cover (tied head, relu
/// feed-forward, a model that ends with EOS).
pub fn derived_checkpoint(
    source: &str,
    label: &str,
    edit_config: impl FnOnce(&mut serde_json::Value),
    edit_tensors: impl FnOnce(&mut Tensors),
) -> Scratch {
    let dst = fixture_without_weights(source, label);
    let config_path = dst.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    edit_config(&mut config);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut tensors = fixture_tensors(source);
    edit_tensors(&mut tensors);
    write_weights(dst.path(), &tensors, safetensors::Dtype::F32, 1);
    dst
}

/// Writes `tensors` as safetensors with every tensor stored as `dtype` (F32, F16 or
/// BF16), split into `shards` files with an index when `shards > 1`. Values must be
/// exactly representable in `dtype` (see [`representable`]).
pub fn write_weights(dir: &Path, tensors: &Tensors, dtype: safetensors::Dtype, shards: usize) {
    use safetensors::Dtype;
    let encode = |v: f32| -> Vec<u8> {
        match dtype {
            Dtype::F32 => v.to_le_bytes().to_vec(),
            Dtype::BF16 => ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
            Dtype::F16 => f16_bits_exact(v).to_le_bytes().to_vec(),
            other => panic!("unsupported test dtype {other:?}"),
        }
    };
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, (shape, values))| {
            (
                name.clone(),
                shape.clone(),
                values.iter().flat_map(|&v| encode(v)).collect(),
            )
        })
        .collect();
    let per_shard = raw.len().div_ceil(shards.max(1));
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in raw.chunks(per_shard).enumerate() {
        let file = if shards > 1 {
            format!("model-{:05}-of-{:05}.safetensors", i + 1, shards)
        } else {
            "model.safetensors".to_string()
        };
        let views: Vec<(String, safetensors::tensor::TensorView)> = chunk
            .iter()
            .map(|(name, shape, data)| {
                let view = safetensors::tensor::TensorView::new(dtype, shape.clone(), data)
                    .expect("tensor view");
                weight_map.insert(name.clone(), serde_json::Value::String(file.clone()));
                (name.clone(), view)
            })
            .collect();
        std::fs::write(
            dir.join(&file),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
    }
    if shards > 1 {
        let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    }
}

/// `v` moved to the nearest lower-magnitude value representable in `dtype` (truncation;
/// F16 values below its normal range become 0), so the same numbers can be written both
/// as `dtype` and as float32.
pub fn representable(v: f32, dtype: safetensors::Dtype) -> f32 {
    use safetensors::Dtype;
    match dtype {
        Dtype::BF16 => f32::from_bits(v.to_bits() & 0xffff_0000),
        Dtype::F16 => {
            if v.abs() < 6.103_515_6e-5 {
                0.0
            } else {
                assert!(v.abs() < 65504.0, "test weights stay in half range");
                f32::from_bits(v.to_bits() & 0xffff_e000)
            }
        }
        _ => v,
    }
}

/// Half-precision bits of a value already representable as a normal half (or zero).
fn f16_bits_exact(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    if v == 0.0 {
        return sign;
    }
    let exponent = (((bits >> 23) & 0xff) as i32 - 127 + 15) as u16;
    sign | (exponent << 10) | ((bits >> 13) & 0x3ff) as u16
}

/// The fixture's tensors as float32.
pub fn fixture_tensors(source: &str) -> Tensors {
    let bytes = std::fs::read(fixtures_dir().join(source).join("model.safetensors")).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// A copy of fixture `source` without its weights (config and tokenizer files only).
pub fn fixture_without_weights(source: &str, label: &str) -> Scratch {
    let dst = Scratch::new(label);
    for entry in std::fs::read_dir(fixtures_dir().join(source)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), dst.path().join(entry.file_name())).unwrap();
        }
    }
    dst
}
