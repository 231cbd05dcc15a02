//! A random-weight GPT-2 big enough that generation takes measurable time (the tiny
//! fixture answers 100 tokens in milliseconds, too fast to catch a request in flight).
//! Written once per test process into a shared temp directory: `config.json`, a
//! hand-encoded `model.safetensors` (f32, tied head, normal(0, 0.02) weights from a seeded
//! generator) and the tokenizer files of `tests/fixtures/gpt2-tiny`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::json;

use super::{fixtures, AgentConfig};

/// The model id the slow checkpoint is served under.
pub const SLOW_MODEL: &str = "gpt2-slow";

const N_EMBD: usize = 256;
const N_LAYER: usize = 6;
const N_HEAD: usize = 4;
const N_POSITIONS: usize = 1024;
const VOCAB: usize = 50257;
const EOS: usize = 50256;

/// The directory holding the checkpoint (created on first call).
pub fn slow_gpt2() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir for the slow model");
        write_checkpoint(&dir.path().join(SLOW_MODEL));
        dir
    })
    .path()
}

impl AgentConfig {
    /// Adds the slow checkpoint as model `gpt2-slow` (and its directory to `model_roots`).
    pub fn with_slow_model(mut self) -> Self {
        let root = slow_gpt2();
        self.model_roots.push(root.to_owned());
        self.model(SLOW_MODEL, &root.join(SLOW_MODEL).display().to_string())
    }
}

fn write_checkpoint(dir: &Path) {
    std::fs::create_dir_all(dir).expect("model dir");
    let tiny: PathBuf = fixtures().join("gpt2-tiny");
    for file in [
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ] {
        std::fs::copy(tiny.join(file), dir.join(file)).expect("copy tokenizer file");
    }
    let config = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "bos_token_id": EOS, "eos_token_id": EOS,
        "layer_norm_epsilon": 1e-5,
        "n_embd": N_EMBD, "n_head": N_HEAD, "n_layer": N_LAYER,
        "n_positions": N_POSITIONS, "n_ctx": N_POSITIONS, "n_inner": null,
        "scale_attn_weights": true,
        "vocab_size": VOCAB,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");

    let mut rng = Normal::new(0x5eed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, init: Init| {
        let n: usize = shape.iter().product();
        let data = match init {
            Init::Normal => (0..n).map(|_| rng.sample() * 0.02).collect(),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
        };
        tensors.push((name, shape, data));
    };
    let e = N_EMBD;
    for layer in 0..N_LAYER {
        let p = format!("transformer.h.{layer}");
        add(format!("{p}.ln_1.weight"), vec![e], Init::Ones);
        add(format!("{p}.ln_1.bias"), vec![e], Init::Zeros);
        add(
            format!("{p}.attn.c_attn.weight"),
            vec![e, 3 * e],
            Init::Normal,
        );
        add(format!("{p}.attn.c_attn.bias"), vec![3 * e], Init::Zeros);
        add(format!("{p}.attn.c_proj.weight"), vec![e, e], Init::Normal);
        add(format!("{p}.attn.c_proj.bias"), vec![e], Init::Zeros);
        add(format!("{p}.ln_2.weight"), vec![e], Init::Ones);
        add(format!("{p}.ln_2.bias"), vec![e], Init::Zeros);
        add(format!("{p}.mlp.c_fc.weight"), vec![e, 4 * e], Init::Normal);
        add(format!("{p}.mlp.c_fc.bias"), vec![4 * e], Init::Zeros);
        add(
            format!("{p}.mlp.c_proj.weight"),
            vec![4 * e, e],
            Init::Normal,
        );
        add(format!("{p}.mlp.c_proj.bias"), vec![e], Init::Zeros);
    }
    add("transformer.ln_f.weight".into(), vec![e], Init::Ones);
    add("transformer.ln_f.bias".into(), vec![e], Init::Zeros);
    add(
        "transformer.wpe.weight".into(),
        vec![N_POSITIONS, e],
        Init::Normal,
    );
    add(
        "transformer.wte.weight".into(),
        vec![VOCAB, e],
        Init::Normal,
    );
    // A zero EOS row keeps its logit at 0 while the best of 50k random logits is well above:
    // greedy generation never ends early, so a long request really is long.
    let wte = &mut tensors.last_mut().expect("wte").2;
    wte[EOS * e..(EOS + 1) * e].fill(0.0);
    write_safetensors(&dir.join("model.safetensors"), &tensors);
}

enum Init {
    Normal,
    Zeros,
    Ones,
}

/// The safetensors layout: u64 LE header length, JSON header, raw little-endian data.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let end = offset + data.len() * 4;
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, _, data) in tensors {
        for value in data {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).expect("model.safetensors");
}

/// Standard normal draws: splitmix64 uniforms through Box–Muller.
struct Normal {
    state: u64,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Normal { state: seed }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}
