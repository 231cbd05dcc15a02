//! The feed-forward activations the supported checkpoints name in their `config.json`.

use candle_core::{Result, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation GPT-2 and Flan-T5 use.
    GeluTanh,
    /// `gelu`: the exact erf form.
    GeluErf,
    Relu,
    Silu,
}

impl Activation {
    /// The names Hugging Face's `ACT2FN` uses for the activations implemented here.
    pub const SUPPORTED: &'static str = "gelu_new, gelu_pytorch_tanh, gelu, relu, silu";

    pub fn from_hf_name(name: &str) -> Option<Self> {
        match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "gelu" => Some(Self::GeluErf),
            "relu" => Some(Self::Relu),
            "silu" | "swish" => Some(Self::Silu),
            _ => None,
        }
    }

    pub fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::GeluTanh => super::gelu::gelu_tanh(xs),
            Self::GeluErf => xs.gelu_erf(),
            Self::Relu => xs.relu(),
            Self::Silu => xs.silu(),
        }
    }
}
