//! What a deploy asks for, once validated, independent of the surface it came through.

use runtime::ct2::ComputeType;
use runtime::model::WeightFormat;
use serde::{Deserialize, Serialize};

/// The deployment's generation defaults (Kore `hyperParameters`); a generate request may
/// override each within the same ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationParams {
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    /// New tokens at most.
    pub max_tokens: u32,
    pub stop_sequences: Vec<String>,
}

impl Default for GenerationParams {
    /// Used where a surface makes hyperParameters optional (Lucidworks): greedy, 64 tokens.
    fn default() -> Self {
        GenerationParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 50,
            max_tokens: 64,
            stop_sequences: Vec::new(),
        }
    }
}

/// Replicas and batching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    pub max_batch_size: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub scale_up_delay_ms: u32,
    pub scale_down_delay_ms: u32,
}

/// Which engine runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `optimizationType: ""`.
    Candle,
    Ctranslate2,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Candle => "candle",
            BackendKind::Ctranslate2 => "ctranslate2",
        }
    }
}

/// `quantizationType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    /// `""`: the backend's default (candle: f32 on CPU, f16/bf16 on CUDA; CTranslate2:
    /// int8_float16).
    Default,
    NoQuantization,
    Int8Float16,
}

impl Quantization {
    /// How candle holds the projection weights: `int8_float16` asks for int8 weights
    /// (float32 activations on the CPU, docs/models.md § int8 weights).
    pub(crate) fn candle_weights(self) -> WeightFormat {
        match self {
            Quantization::Int8Float16 => WeightFormat::Int8,
            Quantization::Default | Quantization::NoQuantization => WeightFormat::Float,
        }
    }

    /// The CTranslate2 compute type a deploy asks for: `""` means the seed's fast path,
    /// int8 weights with float16 activations.
    pub(crate) fn ct2_requested(self) -> ComputeType {
        match self {
            Quantization::NoQuantization => ComputeType::Float32,
            Quantization::Default | Quantization::Int8Float16 => ComputeType::Int8Float16,
        }
    }
}

/// Kore `?modelType=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ModelType {
    OpenSource,
    FineTune,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub(crate) model_id: String,
    pub name: String,
    pub(crate) model_type: ModelType,
    /// Reuse downloaded weights and converted models when still valid.
    pub(crate) reuse_cached_artifacts: bool,
    pub generation: GenerationParams,
    pub scaling: Scaling,
    pub device_type: String,
    pub backend: BackendKind,
    pub quantization: Quantization,
    /// The deploy body's `chat_template` (Jinja), overriding the model's own and the
    /// architecture's default (crate::chat_template). Absent in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
}

#[cfg(test)]
impl DeploymentSpec {
    /// A valid spec for unit tests: model `m`, one replica with a batch of one.
    pub(crate) fn example(
        device_type: &str,
        backend: BackendKind,
        quantization: Quantization,
    ) -> Self {
        DeploymentSpec {
            model_id: "m".to_owned(),
            name: "m".to_owned(),
            model_type: ModelType::OpenSource,
            reuse_cached_artifacts: false,
            generation: GenerationParams::default(),
            scaling: Scaling {
                max_batch_size: 1,
                min_replicas: 1,
                max_replicas: 1,
                scale_up_delay_ms: 1,
                scale_down_delay_ms: 50,
            },
            device_type: device_type.to_owned(),
            backend,
            quantization,
            chat_template: None,
        }
    }
}
