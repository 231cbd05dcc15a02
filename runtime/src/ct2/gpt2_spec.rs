//! GPT-2 (`GPT2LMHeadModel`) → CTranslate2 `TransformerDecoderSpec` revision 8, as
//! `GPT2Loader` in CTranslate2's `converters/transformers.py` builds it.

use std::collections::BTreeMap;
use std::path::Path;

use super::activation::activation_code;
use super::error::ConvertError;
use super::hf_vocabulary::{special_token, HfVocabulary};
use super::py_json::PyJson;
use super::source::{HfConfig, SourceTensors};
use super::spec::{Scalar, SpecBuilder, SpecParts};

const SPEC_NAME: &str = "TransformerDecoderSpec";
const SPEC_REVISION: u32 = 8;
const DEFAULT_SPECIAL: &str = "<|endoftext|>";

pub fn build(
    dir: &Path,
    config: &HfConfig,
    weights: &SourceTensors,
) -> Result<SpecParts, ConvertError> {
    let n_layer = config.usize("n_layer")?;
    let n_head = config.usize("n_head")?;
    let n_embd = config.usize("n_embd")?;
    let n_inner = config.usize_or("n_inner", 4 * n_embd)?;
    let activation = activation_code(config, "activation_function", "gelu_new")?;
    // CTranslate2's decoder has no per-layer attention scaling: refuse rather than
    // convert into a model that computes something else.
    if config.bool_or("scale_attn_by_inverse_layer_idx", false)? {
        return Err(config.field_error(
            "scale_attn_by_inverse_layer_idx",
            "must be false (CTranslate2 cannot scale attention per layer)",
        ));
    }
    if !config.bool_or("scale_attn_weights", true)? {
        return Err(config.field_error(
            "scale_attn_weights",
            "must be true (CTranslate2 always scales attention by 1/sqrt(head_dim))",
        ));
    }
    let num_heads =
        i16::try_from(n_head).map_err(|_| config.field_error("n_head", "must be at most 32767"))?;

    // Older checkpoints store the transformer's tensors without the `transformer.` prefix.
    let prefix = if weights.contains("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let t = |name: &str| format!("{prefix}{name}");

    let wte = weights.tensor(&t("wte.weight"))?;
    let vocab_size = match wte.shape.as_slice() {
        [rows, cols] if *cols == n_embd => *rows,
        _ => {
            return Err(ConvertError::TensorShape {
                name: t("wte.weight"),
                found: wte.shape.clone(),
                expected: format!("[vocab_size, {n_embd}]"),
            })
        }
    };

    let mut spec = SpecBuilder::new(SPEC_NAME, SPEC_REVISION);
    spec.scalar("decoder/activation", Scalar::I8(activation));
    spec.flag("decoder/alibi", false);
    spec.flag("decoder/alibi_use_positive_positions", false);
    spec.scalar("decoder/alignment_heads", Scalar::I16(1));
    spec.scalar("decoder/alignment_layer", Scalar::I16(-1));
    spec.scalar("decoder/num_heads", Scalar::I16(num_heads));
    spec.flag("decoder/pre_norm", true);
    spec.flag("decoder/scale_alibi", false);
    spec.flag("decoder/scale_embeddings", false);
    spec.flag("decoder/start_from_zero_embedding", false);

    let projection = if weights.contains("lm_head.weight") {
        weights.tensor_shaped("lm_head.weight", &[vocab_size, n_embd])?
    } else {
        wte.clone() // tied to the token embedding
    };
    spec.weight("decoder/embeddings/weight", wte);
    spec.weight("decoder/projection/weight", projection);
    let wpe = weights.tensor(&t("wpe.weight"))?;
    if wpe.shape.len() != 2 || wpe.shape[1] != n_embd {
        return Err(ConvertError::TensorShape {
            name: t("wpe.weight"),
            found: wpe.shape,
            expected: format!("[n_positions, {n_embd}]"),
        });
    }
    spec.tensor("decoder/position_encodings/encodings", wpe);
    spec.tensor(
        "decoder/layer_norm/gamma",
        weights.tensor_shaped(&t("ln_f.weight"), &[n_embd])?,
    );
    spec.tensor(
        "decoder/layer_norm/beta",
        weights.tensor_shaped(&t("ln_f.bias"), &[n_embd])?,
    );

    for i in 0..n_layer {
        let h = |name: &str| t(&format!("h.{i}.{name}"));
        let scope = format!("decoder/layer_{i}");
        let layer_norm = |spec: &mut SpecBuilder, into: &str, from: &str| {
            spec.tensor(
                format!("{scope}/{into}/gamma"),
                weights.tensor_shaped(&h(&format!("{from}.weight")), &[n_embd])?,
            );
            spec.tensor(
                format!("{scope}/{into}/beta"),
                weights.tensor_shaped(&h(&format!("{from}.bias")), &[n_embd])?,
            );
            Ok::<(), ConvertError>(())
        };
        // Conv1D stores [in, out]; CTranslate2's linear weights are [out, in].
        let conv1d = |spec: &mut SpecBuilder, into: &str, from: &str, n_in: usize, n_out: usize| {
            let weight = weights.tensor_shaped(&h(&format!("{from}.weight")), &[n_in, n_out])?;
            spec.weight(format!("{scope}/{into}/weight"), weight.transposed());
            spec.tensor(
                format!("{scope}/{into}/bias"),
                weights.tensor_shaped(&h(&format!("{from}.bias")), &[n_out])?,
            );
            Ok::<(), ConvertError>(())
        };
        layer_norm(&mut spec, "self_attention/layer_norm", "ln_1")?;
        conv1d(
            &mut spec,
            "self_attention/linear_0",
            "attn.c_attn",
            n_embd,
            3 * n_embd,
        )?;
        conv1d(
            &mut spec,
            "self_attention/linear_1",
            "attn.c_proj",
            n_embd,
            n_embd,
        )?;
        layer_norm(&mut spec, "ffn/layer_norm", "ln_2")?;
        conv1d(&mut spec, "ffn/linear_0", "mlp.c_fc", n_embd, n_inner)?;
        conv1d(&mut spec, "ffn/linear_1", "mlp.c_proj", n_inner, n_embd)?;
    }

    let vocabulary = HfVocabulary::read(dir)?;
    if vocabulary.tokens.len() != vocab_size {
        return Err(ConvertError::VocabularySize {
            source_file: vocabulary.source_file.to_string(),
            found: vocabulary.tokens.len(),
            expected: vocab_size,
        });
    }

    let special = |key: &str| -> Result<PyJson, ConvertError> {
        Ok(PyJson::Str(
            special_token(dir, key)?.unwrap_or_else(|| DEFAULT_SPECIAL.to_string()),
        ))
    };
    let mut model_config = BTreeMap::new();
    model_config.insert("bos_token".to_string(), special("bos_token")?);
    model_config.insert("eos_token".to_string(), special("eos_token")?);
    model_config.insert("unk_token".to_string(), special("unk_token")?);
    model_config.insert("layer_norm_epsilon".to_string(), PyJson::Null);
    // The Python converter compares num_heads_kv (None here) with num_heads, so it always
    // writes true for GPT-2; the loader reads the layout from the weights anyway.
    model_config.insert("multi_query_attention".to_string(), PyJson::Bool(true));

    Ok(SpecParts {
        spec,
        config: PyJson::Object(model_config),
        vocabulary: vocabulary.tokens,
        vocabulary_file: "vocabulary.json",
    })
}
