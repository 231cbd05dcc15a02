//! T5 / Flan-T5 (`T5ForConditionalGeneration`) → CTranslate2 `TransformerSpec` revision 7,
//! as `T5Loader` in CTranslate2's `converters/transformers.py` builds it: pre-norm RMS
//! layer norms, fused q/k/v, relative attention bias computed in layer 0 and shared by the
//! later layers (stored once, the others become aliases), gated or plain feed-forward.

use std::collections::BTreeMap;
use std::path::Path;

use super::activation::activation_code_for;
use super::error::ConvertError;
use super::hf_vocabulary::{special_token, HfVocabulary};
use super::py_json::PyJson;
use super::source::{HfConfig, SourceTensors};
use super::spec::{Scalar, SpecBuilder, SpecParts, Tensor};

const SPEC_NAME: &str = "TransformerSpec";
const SPEC_REVISION: u32 = 7;

/// The shape facts every tensor is checked against.
struct Dims {
    d_model: usize,
    d_ff: usize,
    num_heads: usize,
    gated: bool,
    max_distance: i32,
}

pub fn build(
    dir: &Path,
    config: &HfConfig,
    weights: &SourceTensors,
) -> Result<SpecParts, ConvertError> {
    let d_model = config.usize("d_model")?;
    let d_kv = config.usize("d_kv")?;
    let d_ff = config.usize("d_ff")?;
    let num_heads = config.usize("num_heads")?;
    let num_layers = config.usize("num_layers")?;
    let num_decoder_layers = config.usize_or("num_decoder_layers", num_layers)?;
    let vocab_size = config.usize("vocab_size")?;
    let tied = config.bool_or("tie_word_embeddings", true)?;
    let max_distance = config.usize_or("relative_attention_max_distance", 128)?;
    if num_heads * d_kv != d_model {
        // CTranslate2's T5 layout derives the head size from d_model / num_heads.
        return Err(config.field_error(
            "d_kv",
            &format!("must equal d_model / num_heads ({d_model} / {num_heads}); given {d_kv}"),
        ));
    }
    // transformers derives the activation from feed_forward_proj ("gated-gelu" means
    // the tanh-approximated gelu_new), whatever dense_act_fn says.
    let feed_forward_proj = config.str_or("feed_forward_proj", "relu")?;
    let parts: Vec<&str> = feed_forward_proj.split('-').collect();
    let (gated, act_name) = match parts.as_slice() {
        [act] => (false, *act),
        ["gated", act] => (true, if *act == "gelu" { "gelu_new" } else { *act }),
        _ => {
            return Err(config.field_error(
                "feed_forward_proj",
                &format!("must be ACT or gated-ACT; given {feed_forward_proj:?}"),
            ))
        }
    };
    let activation = activation_code_for(config, "feed_forward_proj", act_name)?;
    let dims = Dims {
        d_model,
        d_ff,
        num_heads,
        gated,
        max_distance: i32::try_from(max_distance).map_err(|_| {
            config.field_error("relative_attention_max_distance", "must fit in int32")
        })?,
    };
    let heads = i16::try_from(num_heads)
        .map_err(|_| config.field_error("num_heads", "must be at most 32767"))?;

    let shared = weights.tensor_shaped("shared.weight", &[vocab_size, d_model])?;
    let embedding = |name: &str| -> Result<Tensor, ConvertError> {
        if weights.contains(name) {
            weights.tensor_shaped(name, &[vocab_size, d_model])
        } else {
            Ok(shared.clone())
        }
    };

    let mut spec = SpecBuilder::new(SPEC_NAME, SPEC_REVISION);

    spec.scalar("encoder/activation", Scalar::I8(activation));
    spec.scalar("encoder/embeddings_merge", Scalar::I8(0));
    spec.flag("encoder/multi_query_attention", false);
    spec.scalar("encoder/num_heads", Scalar::I16(heads));
    spec.flag("encoder/pre_norm", true);
    spec.flag("encoder/scale_embeddings", false);
    spec.weight(
        "encoder/embeddings_0/weight",
        embedding("encoder.embed_tokens.weight")?,
    );
    spec.tensor(
        "encoder/layer_norm/gamma",
        weights.tensor_shaped("encoder.final_layer_norm.weight", &[d_model])?,
    );
    let bias = relative_bias(weights, "encoder", &dims)?;
    for i in 0..num_layers {
        let scope = format!("encoder/layer_{i}");
        let block = format!("encoder.block.{i}.layer");
        self_attention(
            &mut spec,
            weights,
            &scope,
            &format!("{block}.0"),
            &bias,
            &dims,
        )?;
        feed_forward(&mut spec, weights, &scope, &format!("{block}.1"), &dims)?;
    }

    spec.scalar("decoder/activation", Scalar::I8(activation));
    spec.flag("decoder/alibi", false);
    spec.flag("decoder/alibi_use_positive_positions", false);
    spec.scalar("decoder/alignment_heads", Scalar::I16(1));
    spec.scalar("decoder/alignment_layer", Scalar::I16(-1));
    spec.scalar("decoder/num_heads", Scalar::I16(heads));
    spec.flag("decoder/pre_norm", true);
    spec.flag("decoder/scale_alibi", false);
    spec.flag("decoder/scale_embeddings", false);
    spec.flag("decoder/start_from_zero_embedding", false);
    spec.weight(
        "decoder/embeddings/weight",
        embedding("decoder.embed_tokens.weight")?,
    );
    spec.tensor(
        "decoder/layer_norm/gamma",
        weights.tensor_shaped("decoder.final_layer_norm.weight", &[d_model])?,
    );
    let projection = if weights.contains("lm_head.weight") {
        weights.tensor_shaped("lm_head.weight", &[vocab_size, d_model])?
    } else if tied {
        shared.clone()
    } else {
        weights.tensor("lm_head.weight")? // reports the missing tensor
    };
    spec.weight("decoder/projection/weight", projection);
    if tied {
        // A tied head rescales the decoder output by d_model^-0.5 (as transformers does).
        spec.scalar(
            "decoder/scale_outputs",
            Scalar::F32((d_model as f64).powf(-0.5) as f32),
        );
    }
    let bias = relative_bias(weights, "decoder", &dims)?;
    for i in 0..num_decoder_layers {
        let scope = format!("decoder/layer_{i}");
        let block = format!("decoder.block.{i}.layer");
        self_attention(
            &mut spec,
            weights,
            &scope,
            &format!("{block}.0"),
            &bias,
            &dims,
        )?;
        cross_attention(&mut spec, weights, &scope, &format!("{block}.1"), &dims)?;
        feed_forward(&mut spec, weights, &scope, &format!("{block}.2"), &dims)?;
    }

    // The tokenizer may hold fewer tokens than the embedding has rows: CTranslate2 pads
    // with <extra_id_N> placeholders, counting from 0.
    let mut tokens = HfVocabulary::read(dir)?;
    if tokens.tokens.len() > vocab_size {
        return Err(ConvertError::VocabularySize {
            source_file: tokens.source_file.to_string(),
            found: tokens.tokens.len(),
            expected: vocab_size,
        });
    }
    let missing = vocab_size - tokens.tokens.len();
    tokens
        .tokens
        .extend((0..missing).map(|i| format!("<extra_id_{i}>")));

    let pad = special_token(dir, "pad_token")?.unwrap_or_else(|| "<pad>".to_string());
    let eos = special_token(dir, "eos_token")?.unwrap_or_else(|| "</s>".to_string());
    let unk = special_token(dir, "unk_token")?.unwrap_or_else(|| "<unk>".to_string());
    let decoder_start = match config.get("decoder_start_token_id") {
        None => pad.clone(),
        Some(_) => {
            let id = config.usize("decoder_start_token_id")?;
            tokens
                .tokens
                .get(id)
                .cloned()
                .ok_or_else(|| ConvertError::TokenId {
                    field: "decoder_start_token_id".into(),
                    id: id as u64,
                    size: vocab_size,
                })?
        }
    };
    let mut model_config = BTreeMap::new();
    model_config.insert("add_source_bos".to_string(), PyJson::Bool(false));
    model_config.insert("add_source_eos".to_string(), PyJson::Bool(false));
    model_config.insert("bos_token".to_string(), PyJson::Str(pad));
    model_config.insert(
        "decoder_start_token".to_string(),
        PyJson::Str(decoder_start),
    );
    model_config.insert("eos_token".to_string(), PyJson::Str(eos));
    model_config.insert("layer_norm_epsilon".to_string(), PyJson::Null);
    model_config.insert("multi_query_attention".to_string(), PyJson::Bool(false));
    model_config.insert("unk_token".to_string(), PyJson::Str(unk));

    Ok(SpecParts {
        spec,
        config: PyJson::Object(model_config),
        vocabulary: tokens.tokens,
        vocabulary_file: "shared_vocabulary.json",
    })
}

/// Layer 0's relative attention bias `[num_buckets, num_heads]` of one stack.
fn relative_bias(
    weights: &SourceTensors,
    stack: &str,
    dims: &Dims,
) -> Result<Tensor, ConvertError> {
    let name = format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    let bias = weights.tensor(&name)?;
    if bias.shape.len() != 2 || bias.shape[1] != dims.num_heads {
        return Err(ConvertError::TensorShape {
            name,
            found: bias.shape,
            expected: format!("[num_buckets, {}]", dims.num_heads),
        });
    }
    Ok(bias)
}

fn square(weights: &SourceTensors, name: &str, dims: &Dims) -> Result<Tensor, ConvertError> {
    weights.tensor_shaped(name, &[dims.d_model, dims.d_model])
}

fn self_attention(
    spec: &mut SpecBuilder,
    weights: &SourceTensors,
    scope: &str,
    layer: &str,
    bias: &Tensor,
    dims: &Dims,
) -> Result<(), ConvertError> {
    let scope = format!("{scope}/self_attention");
    let q = square(weights, &format!("{layer}.SelfAttention.q.weight"), dims)?;
    let k = square(weights, &format!("{layer}.SelfAttention.k.weight"), dims)?;
    let v = square(weights, &format!("{layer}.SelfAttention.v.weight"), dims)?;
    spec.weight(
        format!("{scope}/linear_0/weight"),
        Tensor::concat_rows(&[&q, &k, &v]),
    );
    spec.weight(
        format!("{scope}/linear_1/weight"),
        square(weights, &format!("{layer}.SelfAttention.o.weight"), dims)?,
    );
    spec.tensor(
        format!("{scope}/layer_norm/gamma"),
        weights.tensor_shaped(&format!("{layer}.layer_norm.weight"), &[dims.d_model])?,
    );
    // T5 scales nothing: the query scale is 1.
    spec.scalar(format!("{scope}/queries_scale"), Scalar::F32(1.0));
    spec.tensor(format!("{scope}/relative_attention_bias"), bias.clone());
    spec.scalar(
        format!("{scope}/relative_attention_max_distance"),
        Scalar::I32(dims.max_distance),
    );
    Ok(())
}

fn cross_attention(
    spec: &mut SpecBuilder,
    weights: &SourceTensors,
    scope: &str,
    layer: &str,
    dims: &Dims,
) -> Result<(), ConvertError> {
    let scope = format!("{scope}/attention");
    let q = square(weights, &format!("{layer}.EncDecAttention.q.weight"), dims)?;
    let k = square(weights, &format!("{layer}.EncDecAttention.k.weight"), dims)?;
    let v = square(weights, &format!("{layer}.EncDecAttention.v.weight"), dims)?;
    spec.weight(format!("{scope}/linear_0/weight"), q);
    spec.weight(
        format!("{scope}/linear_1/weight"),
        Tensor::concat_rows(&[&k, &v]),
    );
    spec.weight(
        format!("{scope}/linear_2/weight"),
        square(weights, &format!("{layer}.EncDecAttention.o.weight"), dims)?,
    );
    spec.tensor(
        format!("{scope}/layer_norm/gamma"),
        weights.tensor_shaped(&format!("{layer}.layer_norm.weight"), &[dims.d_model])?,
    );
    spec.scalar(format!("{scope}/queries_scale"), Scalar::F32(1.0));
    Ok(())
}

fn feed_forward(
    spec: &mut SpecBuilder,
    weights: &SourceTensors,
    scope: &str,
    layer: &str,
    dims: &Dims,
) -> Result<(), ConvertError> {
    let scope = format!("{scope}/ffn");
    let (d_model, d_ff) = (dims.d_model, dims.d_ff);
    let dense = |name: &str| format!("{layer}.DenseReluDense.{name}.weight");
    if dims.gated {
        spec.weight(
            format!("{scope}/linear_0/weight"),
            weights.tensor_shaped(&dense("wi_0"), &[d_ff, d_model])?,
        );
        spec.weight(
            format!("{scope}/linear_0_noact/weight"),
            weights.tensor_shaped(&dense("wi_1"), &[d_ff, d_model])?,
        );
    } else {
        spec.weight(
            format!("{scope}/linear_0/weight"),
            weights.tensor_shaped(&dense("wi"), &[d_ff, d_model])?,
        );
    }
    spec.weight(
        format!("{scope}/linear_1/weight"),
        weights.tensor_shaped(&dense("wo"), &[d_model, d_ff])?,
    );
    spec.tensor(
        format!("{scope}/layer_norm/gamma"),
        weights.tensor_shaped(&format!("{layer}.layer_norm.weight"), &[d_model])?,
    );
    Ok(())
}
