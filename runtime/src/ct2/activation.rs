//! CTranslate2's activation codes (`ops/activation.h`) for the activation names
//! transformers writes in `config.json`.

use super::error::ConvertError;
use super::source::HfConfig;

/// CTranslate2's activation codes (`ops/activation.h`) for the names transformers uses.
pub fn activation_code_for(config: &HfConfig, field: &str, name: &str) -> Result<i8, ConvertError> {
    Ok(match name {
        "relu" => 0,
        "gelu_fast" | "gelu_new" | "gelu_pytorch_tanh" => 1,
        "silu" | "swish" => 2,
        "gelu" | "gelu_python" => 3,
        "quick_gelu" => 4,
        other => {
            return Err(config.field_error(
                field,
                &format!(
                    "names activation {other:?}; supported: relu, gelu, gelu_new, gelu_fast, \
                     gelu_python, gelu_pytorch_tanh, quick_gelu, silu, swish"
                ),
            ))
        }
    })
}

/// The activation named by `field` (or `default` when absent).
pub fn activation_code(config: &HfConfig, field: &str, default: &str) -> Result<i8, ConvertError> {
    let name = config.str_or(field, default)?;
    activation_code_for(config, field, name)
}
