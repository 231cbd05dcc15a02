//! The request fields completions and chat share, and the rule for the fields we know but
//! cannot honour: refused, naming the field (`docs/api.md`, OpenAI fields). Unknown fields
//! are ignored and logged, as OpenAI's API does.

use axum::http::StatusCode;
use serde_json::Value;

use crate::api::body::{type_name, JsonObject};
use crate::api::spec_fields::GenerationOverrides;
use crate::error::ApiError;
use crate::validation::{self as rules, check_stop_sequences, IntRange, RuleViolation};

/// How many choices a request asks for and how many candidates they are picked from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChoiceCount {
    /// Choices answered per prompt (`n`).
    pub n: usize,
    /// Candidates generated per prompt (`best_of`, ≥ n); the n with the highest cumulative
    /// logprob are answered.
    pub best_of: usize,
}

/// The sampling fields: temperature, top_p, top_k (extension), the first of
/// `max_tokens_keys` present, stop (string or array), seed.
pub fn sampling(
    root: &JsonObject<'_>,
    max_tokens_keys: &[&'static str],
) -> Result<GenerationOverrides, ApiError> {
    let temperature = root
        .number("temperature")?
        .map(|t| rules::TEMPERATURE.check("temperature", t))
        .transpose()?;
    let top_p = root
        .number("top_p")?
        .map(|p| rules::TOP_P.check("top_p", p))
        .transpose()?;
    let top_k = root
        .integer("top_k")?
        .map(|k| rules::TOP_K.check_u32("top_k", k))
        .transpose()?;
    let max_tokens = match root.value_any(max_tokens_keys) {
        Some((key, value)) => {
            let n = integer(key, value)?;
            Some(rules::MAX_TOKENS.check_u32(key, n)?)
        }
        None => None,
    };
    let stop_sequences = match root.value("stop") {
        None => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(_) => root.string_array("stop")?,
    };
    if let Some(stops) = &stop_sequences {
        check_stop_sequences("stop", stops)?;
    }
    let seed = root
        .wide_integer("seed")?
        .map(|s| rules::SEED.check_wide("seed", s).map(|s| s as u64))
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

/// `n` (1–16) and, on completions, `best_of` (n–16).
pub(crate) fn choice_count(
    root: &JsonObject<'_>,
    with_best_of: bool,
) -> Result<ChoiceCount, ApiError> {
    let n = bounded(root, "n", rules::OPENAI_CHOICES)?.unwrap_or(1);
    let best_of = if with_best_of {
        bounded(root, "best_of", rules::OPENAI_CHOICES)?.unwrap_or(n)
    } else {
        n
    };
    if best_of < n {
        return Err(ApiError::out_of_range(
            "best_of",
            format!("best_of must be at least n ({n}), but {best_of} was given"),
        ));
    }
    Ok(ChoiceCount { n, best_of })
}

/// `model`: the deployment id or modelId a request names (required).
pub(crate) fn model(root: &JsonObject<'_>) -> Result<String, ApiError> {
    root.string("model")?
        .map(str::to_owned)
        .ok_or_else(|| RuleViolation::missing("model", "a deployment id or modelId").into())
}

/// `stream` and `stream_options.include_usage`; stream_options without streaming is
/// refused, as OpenAI does.
pub fn streaming(root: &JsonObject<'_>) -> Result<(bool, bool), ApiError> {
    let stream = root.bool("stream")?.unwrap_or(false);
    let Some(options) = root.object("stream_options")? else {
        return Ok((stream, false));
    };
    if !stream {
        return Err(unsupported(
            "stream_options",
            "stream_options is only allowed with \"stream\": true",
        ));
    }
    let include_usage = options.bool("include_usage")?.unwrap_or(false);
    let _ = options.value("include_obfuscation");
    crate::api::body::log_unknown_keys("openai", &[&options]);
    Ok((stream, include_usage))
}

/// An integer field within `range`, as usize.
pub fn bounded(
    root: &JsonObject<'_>,
    key: &'static str,
    range: IntRange,
) -> Result<Option<usize>, ApiError> {
    root.integer(key)?
        .map(|value| range.check_u32(key, value).map(|v| v as usize))
        .transpose()
        .map_err(ApiError::from)
}

fn integer(key: &str, value: &Value) -> Result<i128, ApiError> {
    match value {
        Value::Number(n) if n.is_u64() => Ok(i128::from(n.as_u64().unwrap_or(u64::MAX))),
        Value::Number(n) if n.is_i64() => Ok(i128::from(n.as_i64().unwrap_or(i64::MIN))),
        other => Err(ApiError::wrong_type(key, "an integer", type_name(other))),
    }
}

/// A field OpenAI defines that this server cannot honour with the value given: 400 (our
/// 422 `UNSUPPORTED_PARAMETER`, shaped by [`super::error`]) naming it.
pub fn unsupported(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNSUPPORTED_PARAMETER",
        message,
    )
    .with_field(field)
}

/// A field OpenAI defines, the values of it we can honour (its neutral values) and why
/// other values cannot be.
pub(crate) struct Unhonoured {
    pub key: &'static str,
    pub(crate) neutral: fn(&Value) -> bool,
    pub why: &'static str,
}

/// Refuses the first field of `fields` present with a value we cannot honour.
pub(crate) fn refuse_unhonoured(
    root: &JsonObject<'_>,
    fields: &[Unhonoured],
) -> Result<(), ApiError> {
    for field in fields {
        if let Some(value) = root.value(field.key) {
            if !(field.neutral)(value) {
                return Err(unsupported(
                    field.key,
                    format!("{} is not supported: {}", field.key, field.why),
                ));
            }
        }
    }
    Ok(())
}

/// Neutral values: `0`, `{}`/`[]`/`""`, `false`.
pub(crate) fn is_zero(value: &Value) -> bool {
    value.as_f64() == Some(0.0)
}

pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

pub(crate) fn is_false(value: &Value) -> bool {
    value == &Value::Bool(false)
}

pub fn never(_: &Value) -> bool {
    false
}

/// The fields completions and chat both refuse unless neutral.
pub(crate) const PENALTIES: [Unhonoured; 3] = [
    Unhonoured {
        key: "frequency_penalty",
        neutral: is_zero,
        why: "the samplers apply no repetition penalties; send 0 or leave it out",
    },
    Unhonoured {
        key: "presence_penalty",
        neutral: is_zero,
        why: "the samplers apply no repetition penalties; send 0 or leave it out",
    },
    Unhonoured {
        key: "logit_bias",
        neutral: is_empty,
        why: "the samplers apply no logit bias; send {} or leave it out",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with<T>(body: Value, read: impl FnOnce(&JsonObject<'_>) -> T) -> T {
        read(&JsonObject::root(&body).expect("an object"))
    }

    #[test]
    fn n_and_best_of_are_bounded_and_best_of_defaults_to_n() {
        let count = with(json!({"n": 3}), |r| choice_count(r, true)).expect("valid");
        assert_eq!(count, ChoiceCount { n: 3, best_of: 3 });
        let error = with(json!({"n": 17}), |r| choice_count(r, true)).expect_err("too many");
        assert_eq!(error.field.as_deref(), Some("n"));
        let error =
            with(json!({"n": 3, "best_of": 2}), |r| choice_count(r, true)).expect_err("below n");
        assert_eq!(error.field.as_deref(), Some("best_of"));
    }

    #[test]
    fn a_penalty_is_refused_unless_zero_naming_it() {
        assert!(with(json!({"presence_penalty": 0}), |r| refuse_unhonoured(
            r, &PENALTIES
        ))
        .is_ok());
        let error = with(json!({"presence_penalty": 0.5}), |r| {
            refuse_unhonoured(r, &PENALTIES)
        })
        .expect_err("refused");
        assert_eq!(error.field.as_deref(), Some("presence_penalty"));
        assert_eq!(error.code, "UNSUPPORTED_PARAMETER");
        assert!(with(json!({"logit_bias": {}}), |r| refuse_unhonoured(
            r, &PENALTIES
        ))
        .is_ok());
        assert!(with(json!({"logit_bias": {"50256": -100}}), |r| {
            refuse_unhonoured(r, &PENALTIES)
        })
        .is_err());
    }

    #[test]
    fn max_completion_tokens_is_read_as_max_tokens() {
        let overrides = with(json!({"max_completion_tokens": 5}), |r| {
            sampling(r, &["max_completion_tokens", "max_tokens"])
        })
        .expect("valid");
        assert_eq!(overrides.max_tokens, Some(5));
    }

    #[test]
    fn stream_options_need_streaming() {
        let error = with(
            json!({"stream_options": {"include_usage": true}}),
            streaming,
        )
        .expect_err("not streaming");
        assert_eq!(error.field.as_deref(), Some("stream_options"));
        assert_eq!(
            with(
                json!({"stream": true, "stream_options": {"include_usage": true}}),
                streaming
            )
            .expect("valid"),
            (true, true)
        );
    }
}
