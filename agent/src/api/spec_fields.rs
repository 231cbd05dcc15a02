//! Reading the deploy fields the Kore body, the Lucidworks `config` blob and the native
//! deploy body share, and the per-request generation overrides, against the ranges of
//! [`crate::validation`].

use crate::api::body::JsonObject;
use crate::chat_template::{ChatTemplate, TemplateOrigin};
use crate::deployment::spec::{BackendKind, GenerationParams, Quantization, Scaling};
use crate::error::ApiError;
use crate::gpu::DeviceCatalog;
use crate::validation::{
    self as rules, check_enum, check_replicas, check_stop_sequences, check_top_p_with_temperature,
    RuleViolation,
};

/// Whether absent hyperParameters are an error (Kore) or take defaults (Lucidworks).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    Required,
    Defaulted,
}

/// temperature, maxTokens, topP, topK, stopSequence.
pub(crate) fn generation_params(
    obj: &JsonObject<'_>,
    presence: Presence,
) -> Result<GenerationParams, ApiError> {
    let defaults = GenerationParams::default();
    let required = |key: &str, rule: &str| -> ApiError {
        RuleViolation::missing(&obj.path_of(key), rule).into()
    };
    let temperature = match obj.number("temperature")? {
        Some(t) => rules::TEMPERATURE.check(&obj.path_of("temperature"), t)?,
        None if presence == Presence::Required => {
            return Err(required("temperature", "a number from 0 to 2"))
        }
        None => f64::from(defaults.temperature),
    };
    let max_tokens = match obj.integer("maxTokens")? {
        Some(n) => rules::MAX_TOKENS.check_u32(&obj.path_of("maxTokens"), n)?,
        None if presence == Presence::Required => {
            return Err(required("maxTokens", "an integer from 0 to 512"))
        }
        None => defaults.max_tokens,
    };
    let top_p = match obj.number("topP")? {
        Some(p) => rules::TOP_P.check(&obj.path_of("topP"), p)?,
        None if presence == Presence::Required => {
            return Err(required("topP", "a number from 0 to 1"))
        }
        None => f64::from(defaults.top_p),
    };
    check_top_p_with_temperature(&obj.path_of("topP"), top_p, temperature)?;
    let top_k = match obj.integer("topK")? {
        Some(k) => rules::TOP_K.check_u32(&obj.path_of("topK"), k)?,
        None if presence == Presence::Required => {
            return Err(required("topK", "an integer from 1 to 100"))
        }
        None => defaults.top_k,
    };
    let stop_sequences = obj.string_array("stopSequence")?.unwrap_or_default();
    check_stop_sequences(&obj.path_of("stopSequence"), &stop_sequences)?;
    Ok(GenerationParams {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
        max_tokens,
        stop_sequences,
    })
}

/// Overrides a generate request may give; each within the deploy ranges.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GenerationOverrides {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub max_tokens: Option<u32>,
    pub stop_sequences: Option<Vec<String>>,
    pub seed: Option<u64>,
}

/// The keys of [`generation_params`] (all optional) plus `seed`.
pub(crate) fn generation_overrides(obj: &JsonObject<'_>) -> Result<GenerationOverrides, ApiError> {
    let temperature = obj
        .number("temperature")?
        .map(|t| rules::TEMPERATURE.check(&obj.path_of("temperature"), t))
        .transpose()?;
    let max_tokens = obj
        .integer("maxTokens")?
        .map(|n| rules::MAX_TOKENS.check_u32(&obj.path_of("maxTokens"), n))
        .transpose()?;
    let top_p = obj
        .number("topP")?
        .map(|p| rules::TOP_P.check(&obj.path_of("topP"), p))
        .transpose()?;
    let top_k = obj
        .integer("topK")?
        .map(|k| rules::TOP_K.check_u32(&obj.path_of("topK"), k))
        .transpose()?;
    let stop_sequences = obj.string_array("stopSequence")?;
    if let Some(stops) = &stop_sequences {
        check_stop_sequences(&obj.path_of("stopSequence"), stops)?;
    }
    let seed = obj
        .wide_integer("seed")?
        .map(|s| {
            rules::SEED
                .check_wide(&obj.path_of("seed"), s)
                .map(|s| s as u64)
        })
        .transpose()?;
    Ok(GenerationOverrides {
        temperature,
        top_p,
        top_k,
        max_tokens,
        stop_sequences,
        seed,
    })
}

impl GenerationOverrides {
    /// The deployment's defaults with these overrides; topP 0 is checked against the
    /// temperature that results. `top_p_field` names the field to blame.
    pub fn apply(
        &self,
        defaults: &GenerationParams,
        top_p_field: &str,
    ) -> Result<GenerationParams, ApiError> {
        let merged = GenerationParams {
            temperature: self.temperature.map_or(defaults.temperature, |t| t as f32),
            top_p: self.top_p.map_or(defaults.top_p, |p| p as f32),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            max_tokens: self.max_tokens.unwrap_or(defaults.max_tokens),
            stop_sequences: self
                .stop_sequences
                .clone()
                .unwrap_or_else(|| defaults.stop_sequences.clone()),
        };
        // The given value, not its f32 rounding, so the message reports what was sent.
        check_top_p_with_temperature(
            top_p_field,
            self.top_p.unwrap_or(f64::from(merged.top_p)),
            f64::from(merged.temperature),
        )?;
        Ok(merged)
    }
}

/// maxBatchSize, minReplicas, maxReplicas, scaleUpDelay, scaleDownDelay from `obj` (any may
/// be absent, and so may `obj`).
pub fn scaling(obj: Option<&JsonObject<'_>>) -> Result<Scaling, ApiError> {
    let int = |key: &str| -> Result<Option<(String, i128)>, ApiError> {
        match obj {
            Some(o) => Ok(o.integer(key)?.map(|v| (o.path_of(key), v))),
            None => Ok(None),
        }
    };
    let max_batch_size = match int("maxBatchSize")? {
        Some((field, v)) => rules::MAX_BATCH_SIZE.check_u32(&field, v)?,
        None => rules::DEFAULT_MAX_BATCH_SIZE,
    };
    let (min_replicas, max_replicas) = replicas(obj)?;
    let scale_up_delay_ms = match int("scaleUpDelay")? {
        Some((field, v)) => rules::SCALE_UP_DELAY.check_u32(&field, v)?,
        None => rules::DEFAULT_SCALE_UP_DELAY,
    };
    let scale_down_delay_ms = match int("scaleDownDelay")? {
        Some((field, v)) => rules::SCALE_DOWN_DELAY.check_u32(&field, v)?,
        None => rules::DEFAULT_SCALE_DOWN_DELAY,
    };
    Ok(Scaling {
        max_batch_size,
        min_replicas,
        max_replicas,
        scale_up_delay_ms,
        scale_down_delay_ms,
    })
}

/// `minReplicas` (default 1) and `maxReplicas` (default minReplicas, never below it).
pub fn replicas(obj: Option<&JsonObject<'_>>) -> Result<(u32, u32), ApiError> {
    let Some(obj) = obj else {
        return Ok((rules::DEFAULT_MIN_REPLICAS, rules::DEFAULT_MIN_REPLICAS));
    };
    let min_replicas = match obj.integer("minReplicas")? {
        Some(v) => rules::MIN_REPLICAS.check_u32(&obj.path_of("minReplicas"), v)?,
        None => rules::DEFAULT_MIN_REPLICAS,
    };
    let max_replicas = match obj.integer("maxReplicas")? {
        Some(v) => {
            let field = obj.path_of("maxReplicas");
            let max = rules::MAX_REPLICAS.check_u32(&field, v)?;
            check_replicas(&field, min_replicas, max)?;
            max
        }
        None => min_replicas,
    };
    Ok((min_replicas, max_replicas))
}

/// `deviceType`, required, against the device-class catalog.
pub fn device_type(obj: &JsonObject<'_>, catalog: &DeviceCatalog) -> Result<String, ApiError> {
    let field = obj.path_of("deviceType");
    let given = obj.string("deviceType")?.ok_or_else(|| {
        RuleViolation::missing(&field, &format!("one of {}", catalog.names().join(", ")))
    })?;
    catalog.lookup(given).map_err(|error| {
        ApiError::from(RuleViolation::new(
            "INVALID_DEVICE_TYPE",
            &field,
            format!("{field}: {error}"),
        ))
    })?;
    Ok(given.to_owned())
}

/// `optimizationType` and `quantizationType` read from `obj` (the Kore `optimizationInfo`
/// object, or the flat Lucidworks config).
pub(crate) fn optimization(
    obj: Option<&JsonObject<'_>>,
) -> Result<(BackendKind, Quantization), ApiError> {
    let read = |key: &str| -> Result<(String, Option<String>), ApiError> {
        match obj {
            Some(o) => Ok((o.path_of(key), o.string(key)?.map(str::to_owned))),
            None => Ok((key.to_owned(), None)),
        }
    };
    let (opt_field, optimization) = read("optimizationType")?;
    let backend = match optimization.as_deref().map(|v| check_enum(&opt_field, rules::OPTIMIZATION_TYPES, v)).transpose()? {
        None | Some("") => BackendKind::Candle,
        Some("ctranslate2") => BackendKind::Ctranslate2,
        Some(other) => {
            return Err(ApiError::from(RuleViolation::new(
                "UNSUPPORTED_OPTIMIZATION",
                &opt_field,
                format!(
                    "{opt_field} \"{other}\" needs a vLLM backend, and none is configured on this agent; \
                     use \"\" (candle) or \"ctranslate2\""
                ),
            )))
        }
    };
    let (quant_field, quantization) = read("quantizationType")?;
    let quantization = match quantization
        .as_deref()
        .map(|v| check_enum(&quant_field, rules::QUANTIZATION_TYPES, v))
        .transpose()?
    {
        None | Some("") => Quantization::Default,
        Some("no_quantization") => Quantization::NoQuantization,
        Some(_) => Quantization::Int8Float16,
    };
    Ok((backend, quantization))
}

/// `isDeployedPreviously`, also under the documented typo `isDeployedPreviouly`.
pub(crate) fn reuse_cached_artifacts(obj: &JsonObject<'_>) -> Result<bool, ApiError> {
    match obj.value_any(&["isDeployedPreviously", "isDeployedPreviouly"]) {
        Some((key, value)) => crate::api::body::as_bool(&obj.path_of(key), value),
        None => Ok(false),
    }
}

/// `name`, 1–128 characters; `fallback` when absent and not required.
pub fn name(obj: &JsonObject<'_>, fallback: Option<&str>) -> Result<String, ApiError> {
    let field = obj.path_of("name");
    let name = match (obj.string("name")?, fallback) {
        (Some(name), _) => name,
        (None, Some(fallback)) => fallback,
        (None, None) => {
            return Err(RuleViolation::missing(&field, "a string of 1 to 128 characters").into())
        }
    };
    rules::check_chars(&field, rules::NAME_CHARS, name)?;
    Ok(name.to_owned())
}

/// `chat_template` (also `chatTemplate`): a Jinja chat template, at most
/// [`rules::CHAT_TEMPLATE_MAX_BYTES`], that must compile (422 `INVALID_CHAT_TEMPLATE` with
/// the template engine's reason).
pub fn chat_template(obj: &JsonObject<'_>) -> Result<Option<String>, ApiError> {
    let Some((key, value)) = obj.value_any(&["chat_template", "chatTemplate"]) else {
        return Ok(None);
    };
    let field = obj.path_of(key);
    let source = crate::api::body::as_str(&field, value)?;
    if source.is_empty() || source.len() > rules::CHAT_TEMPLATE_MAX_BYTES {
        return Err(ApiError::from(RuleViolation::new(
            "OUT_OF_RANGE",
            &field,
            format!(
                "{field} must be 1 to {} bytes of Jinja, but it has {}",
                rules::CHAT_TEMPLATE_MAX_BYTES,
                source.len()
            ),
        )));
    }
    ChatTemplate::compile(source, TemplateOrigin::Deployment).map_err(|error| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_CHAT_TEMPLATE",
            error.to_string(),
        )
        .with_field(field)
    })?;
    Ok(Some(source.to_owned()))
}
