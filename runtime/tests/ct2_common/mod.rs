//! Shared helpers of the `ct2_*` integration tests: fixture paths, scratch directories,
//! and a variable-by-variable comparison of a converted `model.bin` with the manifest of
//! CTranslate2's own conversion (`tests/fixtures/ct2-reference/*.txt`).

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runtime::ct2::ModelBin;
use sha2::{Digest, Sha256};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn golden() -> serde_json::Value {
    let bytes = std::fs::read(fixtures().join("golden.json")).expect("read golden.json");
    serde_json::from_slice(&bytes).expect("golden.json is JSON")
}

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
    let path = fixtures().join("ct2-reference").join(format!("{name}.txt"));
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
    use safetensors::{Dtype, SafeTensors};
    let src = fixtures().join(source);
    let dst = Scratch::new(label);
    for entry in std::fs::read_dir(&src).expect("read fixture") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name != "model.safetensors" && name != "config.json" {
            std::fs::copy(entry.path(), dst.path().join(&name)).expect("copy fixture file");
        }
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    edit_config(&mut config);
    std::fs::write(dst.path().join("config.json"), config.to_string()).unwrap();

    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let parsed = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Tensors = BTreeMap::new();
    for (name, view) in parsed.tensors() {
        assert_eq!(view.dtype(), Dtype::F32, "fixture tensors are F32");
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    edit_tensors(&mut tensors);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            (
                name,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(name, shape, data)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("tensor view");
            (name.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(dst.path().join("model.safetensors"), out).unwrap();
    dst
}
