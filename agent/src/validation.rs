//! Every documented range and enum of the APIs (`docs/api.md` § Validation table), declared
//! once. The surfaces read their wire fields and check them here; docs/api.md and the tests
//! follow this table.

use thiserror::Error;

/// An inclusive integer range for one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntRange {
    pub min: i64,
    pub max: i64,
}

/// An inclusive real range for one field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatRange {
    pub min: f64,
    pub max: f64,
}

pub const NAME_CHARS: IntRange = IntRange { min: 1, max: 128 };
pub const TEMPERATURE: FloatRange = FloatRange { min: 0.0, max: 2.0 };
pub const MAX_TOKENS: IntRange = IntRange { min: 0, max: 512 };
pub const TOP_P: FloatRange = FloatRange { min: 0.0, max: 1.0 };
pub const TOP_K: IntRange = IntRange { min: 1, max: 100 };
pub const STOP_SEQUENCE_COUNT: IntRange = IntRange { min: 0, max: 8 };
pub const STOP_SEQUENCE_BYTES: IntRange = IntRange { min: 1, max: 64 };
pub const MAX_BATCH_SIZE: IntRange = IntRange { min: 1, max: 256 };
pub const MIN_REPLICAS: IntRange = IntRange { min: 1, max: 10 };
pub const MAX_REPLICAS: IntRange = IntRange { min: 1, max: 50 };
/// Milliseconds.
pub const SCALE_UP_DELAY: IntRange = IntRange { min: 1, max: 1000 };
/// Milliseconds.
pub const SCALE_DOWN_DELAY: IntRange = IntRange { min: 50, max: 2000 };
/// Items in one Lucidworks prediction request.
pub const PREDICTION_BATCH: IntRange = IntRange { min: 1, max: 32 };
/// A modelId (path segment, config key or Hugging Face repo id).
pub const MODEL_ID_CHARS: IntRange = IntRange { min: 1, max: 256 };
/// Prompts in one native generate request.
pub const PROMPT_COUNT: IntRange = IntRange { min: 1, max: 32 };
/// A seed is any u64; JSON integers beyond i64 are refused, so the range is 0..=i64::MAX.
pub const SEED: IntRange = IntRange {
    min: 0,
    max: i64::MAX,
};

pub const DEFAULT_MAX_BATCH_SIZE: u32 = 16;
pub const DEFAULT_MIN_REPLICAS: u32 = 1;
/// Defaults for the scaling delays the Kore body may leave out (ms).
pub const DEFAULT_SCALE_UP_DELAY: u32 = 200;
pub const DEFAULT_SCALE_DOWN_DELAY: u32 = 1000;

/// `?modelType=` on the Kore deploy route.
pub const MODEL_TYPES: &[&str] = &["openSource", "fineTune"];
/// `optimizationInfo.optimizationType`: "" is candle.
pub const OPTIMIZATION_TYPES: &[&str] = &["", "ctranslate2", "vllm"];
/// `optimizationInfo.quantizationType`.
pub const QUANTIZATION_TYPES: &[&str] = &["", "no_quantization", "int8_float16"];

/// A documented rule broken by valid JSON (answered 422).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct RuleViolation {
    /// SNAKE_CASE code for the error JSON.
    pub code: &'static str,
    /// JSON path of the field.
    pub field: String,
    pub message: String,
}

impl RuleViolation {
    pub fn new(code: &'static str, field: &str, message: String) -> Self {
        RuleViolation {
            code,
            field: field.to_owned(),
            message,
        }
    }

    pub fn missing(field: &str, rule: &str) -> Self {
        Self::new(
            "MISSING_FIELD",
            field,
            format!("{field} is required ({rule})"),
        )
    }
}

impl IntRange {
    /// `value` if it lies in the range, else a violation naming `field`, the range and
    /// the value given.
    pub fn check(&self, field: &str, value: i64) -> Result<i64, RuleViolation> {
        self.check_wide(field, i128::from(value))
    }

    /// Like [`check`](Self::check), for a JSON integer read without clamping (see
    /// `JsonObject::wide_integer`): a value beyond i64 is out of range, not i64::MAX.
    pub fn check_wide(&self, field: &str, value: i128) -> Result<i64, RuleViolation> {
        if (i128::from(self.min)..=i128::from(self.max)).contains(&value) {
            Ok(value as i64)
        } else {
            Err(RuleViolation::new(
                "OUT_OF_RANGE",
                field,
                format!(
                    "{field} must be between {} and {}, but {value} was given",
                    self.min, self.max
                ),
            ))
        }
    }

    /// Like [`check`](Self::check), for fields that are `u32` once valid.
    pub fn check_u32(&self, field: &str, value: i64) -> Result<u32, RuleViolation> {
        let value = self.check(field, value)?;
        u32::try_from(value).map_err(|_| {
            RuleViolation::new(
                "OUT_OF_RANGE",
                field,
                format!("{field} must fit in 32 bits, but {value} was given"),
            )
        })
    }
}

impl FloatRange {
    pub fn check(&self, field: &str, value: f64) -> Result<f64, RuleViolation> {
        if value.is_finite() && value >= self.min && value <= self.max {
            Ok(value)
        } else {
            Err(RuleViolation::new(
                "OUT_OF_RANGE",
                field,
                format!(
                    "{field} must be between {} and {}, but {value} was given",
                    self.min, self.max
                ),
            ))
        }
    }
}

/// `value` if it is one of `allowed`.
pub fn check_enum<'a>(
    field: &str,
    allowed: &[&str],
    value: &'a str,
) -> Result<&'a str, RuleViolation> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        let list = allowed
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Err(RuleViolation::new(
            "INVALID_ENUM",
            field,
            format!("{field} must be one of {list}, but \"{value}\" was given"),
        ))
    }
}

/// A string whose length in characters lies in `range`.
pub fn check_chars(field: &str, range: IntRange, value: &str) -> Result<(), RuleViolation> {
    let chars = i64::try_from(value.chars().count()).unwrap_or(i64::MAX);
    if (range.min..=range.max).contains(&chars) {
        Ok(())
    } else {
        Err(RuleViolation::new(
            "OUT_OF_RANGE",
            field,
            format!(
                "{field} must be {} to {} characters long, but it has {chars}",
                range.min, range.max
            ),
        ))
    }
}

/// topP = 0 keeps no token at all; it is meaningful only for greedy decoding.
pub fn check_top_p_with_temperature(
    field: &str,
    top_p: f64,
    temperature: f64,
) -> Result<(), RuleViolation> {
    if top_p == 0.0 && temperature != 0.0 {
        Err(RuleViolation::new(
            "OUT_OF_RANGE",
            field,
            format!(
                "{field} must be greater than 0 when temperature is not 0 (0 < topP ≤ 1); \
                 0 was given with temperature {temperature}"
            ),
        ))
    } else {
        Ok(())
    }
}

/// At most 8 stop sequences of 1–64 bytes each.
pub fn check_stop_sequences(field: &str, stops: &[String]) -> Result<(), RuleViolation> {
    let count = i64::try_from(stops.len()).unwrap_or(i64::MAX);
    if count > STOP_SEQUENCE_COUNT.max {
        return Err(RuleViolation::new(
            "OUT_OF_RANGE",
            field,
            format!(
                "{field} may hold at most {} sequences, but {count} were given",
                STOP_SEQUENCE_COUNT.max
            ),
        ));
    }
    for (i, stop) in stops.iter().enumerate() {
        let bytes = i64::try_from(stop.len()).unwrap_or(i64::MAX);
        if !(STOP_SEQUENCE_BYTES.min..=STOP_SEQUENCE_BYTES.max).contains(&bytes) {
            let item = format!("{field}[{i}]");
            return Err(RuleViolation::new(
                "OUT_OF_RANGE",
                &item,
                format!(
                    "{item} must be {} to {} bytes long, but it has {bytes}",
                    STOP_SEQUENCE_BYTES.min, STOP_SEQUENCE_BYTES.max
                ),
            ));
        }
    }
    Ok(())
}

/// maxReplicas must not be below minReplicas.
pub fn check_replicas(field: &str, min: u32, max: u32) -> Result<(), RuleViolation> {
    if max >= min {
        Ok(())
    } else {
        Err(RuleViolation::new(
            "OUT_OF_RANGE",
            field,
            format!("{field} must be at least minReplicas ({min}), but {max} was given"),
        ))
    }
}

/// A modelId: 1–256 characters, no control characters or whitespace, and no `..` path
/// component (ids become cache keys and Hugging Face repo paths).
pub fn check_model_id(field: &str, id: &str) -> Result<(), RuleViolation> {
    check_chars(field, MODEL_ID_CHARS, id)?;
    let bad_char = id.chars().any(|c| c.is_control() || c.is_whitespace());
    let dot_component = id
        .split('/')
        .any(|part| part == ".." || part == "." || part.is_empty());
    if bad_char || dot_component {
        return Err(RuleViolation::new(
            "INVALID_MODEL_ID",
            field,
            format!(
                "{field} {id:?} must be a name or an org/name repo id without whitespace, \
                 control characters, empty, \".\" or \"..\" components"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_violation_names_field_range_and_value() {
        let error = TOP_K.check("hyperParameters.topK", 0).unwrap_err();
        assert_eq!(error.field, "hyperParameters.topK");
        assert_eq!(
            error.message,
            "hyperParameters.topK must be between 1 and 100, but 0 was given"
        );
    }

    #[test]
    fn float_ranges_refuse_non_finite_values() {
        assert!(TEMPERATURE.check("t", f64::NAN).is_err());
        assert!(TEMPERATURE.check("t", 2.0).is_ok());
        assert!(TEMPERATURE.check("t", 2.000_001).is_err());
    }

    #[test]
    fn top_p_zero_is_allowed_only_for_greedy() {
        assert!(check_top_p_with_temperature("topP", 0.0, 0.0).is_ok());
        assert!(check_top_p_with_temperature("topP", 0.0, 0.7).is_err());
    }

    #[test]
    fn stop_sequence_breach_names_the_item() {
        let stops = vec!["ok".to_owned(), String::new()];
        let error = check_stop_sequences("stopSequence", &stops).unwrap_err();
        assert_eq!(error.field, "stopSequence[1]");
    }

    #[test]
    fn model_ids_with_dot_components_are_refused() {
        assert!(check_model_id("modelId", "google/flan-t5-small").is_ok());
        assert!(check_model_id("modelId", "../etc").is_err());
        assert!(check_model_id("modelId", "a//b").is_err());
        assert!(check_model_id("modelId", "has space").is_err());
    }
}
