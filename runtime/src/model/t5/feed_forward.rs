//! T5's feed-forward sublayer (`DenseReluDense`): `wo(act(wi x))`, or gated as in T5 v1.1 and
//! Flan-T5, `wo(act(wi_0 x) * wi_1 x)`.

use candle_core::{Result, Tensor};

use super::config::{FeedForwardKind, T5Config};
use crate::load_error::LoadError;
use crate::model::activation::Activation;
use crate::model::linear::Linear;
use crate::model::weights::Weights;

pub(crate) struct FeedForward {
    /// `wi`, or `wi_0` and `wi_1` side by side (`[d_model, 2 * d_ff]`) so the gated form is
    /// still one matmul.
    wi: Linear,
    wo: Linear,
    gated: bool,
    activation: Activation,
}

impl FeedForward {
    /// `prefix` is the sublayer's `...DenseReluDense.` path.
    pub(crate) fn load(
        weights: &Weights,
        config: &T5Config,
        kind: FeedForwardKind,
        prefix: &str,
    ) -> std::result::Result<Self, LoadError> {
        let (d, ff) = (config.d_model, config.d_ff);
        let tensor =
            |name: &str, shape: &[usize]| weights.tensor(&format!("{prefix}{name}"), shape);
        let wi = if kind.gated {
            Linear::from_out_in(
                &[
                    tensor("wi_0.weight", &[ff, d])?,
                    tensor("wi_1.weight", &[ff, d])?,
                ],
                weights.format(),
            )?
        } else {
            Linear::from_out_in(&[tensor("wi.weight", &[ff, d])?], weights.format())?
        };
        Ok(Self {
            wi,
            wo: Linear::from_out_in(&[tensor("wo.weight", &[d, ff])?], weights.format())?,
            gated: kind.gated,
            activation: kind.activation,
        })
    }

    /// `xs` `[rows, d_model]` → `[rows, d_model]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let projected = self.wi.forward(xs)?;
        let hidden = if self.gated {
            let ff = projected.dim(1)? / 2;
            let gate = self.activation.apply(&projected.narrow(1, 0, ff)?)?;
            (gate * projected.narrow(1, ff, ff)?)?
        } else {
            self.activation.apply(&projected)?
        };
        self.wo.forward(&hidden)
    }
}
