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
pub(crate) const PREDICTION_BATCH: IntRange = IntRange { min: 1, max: 32 };
/// Each part of a modelId (`name` or `namespace/name`), as the Hugging Face Hub allows.
pub(crate) const MODEL_ID_PART_CHARS: IntRange = IntRange { min: 1, max: 96 };
/// Bytes of a Lucidworks `region`, stored and echoed with the deployment.
pub(crate) const REGION_MAX_BYTES: usize = 64;
/// Bytes of a Lucidworks `customerId` (path), stored with the deployment.
pub(crate) const CUSTOMER_ID_MAX_BYTES: usize = 128;
/// Bytes of the Lucidworks `config` blob as JSON, stored and echoed verbatim.
pub(crate) const CONFIG_MAX_BYTES: usize = 16 * 1024;
/// Prompts in one native generate request.
pub(crate) const PROMPT_COUNT: IntRange = IntRange { min: 1, max: 32 };
/// Bytes of a deploy body's `chat_template`, stored with the deployment.
pub(crate) const CHAT_TEMPLATE_MAX_BYTES: usize = 64 * 1024;
/// Choices in one OpenAI request (`n`, and `best_of` candidates per prompt).
pub(crate) const OPENAI_CHOICES: IntRange = IntRange { min: 1, max: 16 };
/// Messages in one chat request.
pub(crate) const CHAT_MESSAGES: IntRange = IntRange { min: 1, max: 256 };
/// Alternatives per token a generate request may ask for (`logprobs`), as OpenAI allows;
/// the runtime's `MAX_TOP_LOGPROBS`.
pub(crate) const LOGPROBS: IntRange = IntRange { min: 0, max: 20 };
/// A seed is any u64; JSON integers beyond i64 are refused, so the range is 0..=i64::MAX.
pub(crate) const SEED: IntRange = IntRange {
    min: 0,
    max: i64::MAX,
};

pub(crate) const DEFAULT_MAX_BATCH_SIZE: u32 = 16;
pub(crate) const DEFAULT_MIN_REPLICAS: u32 = 1;
/// Defaults for the scaling delays the Kore body may leave out (ms).
pub(crate) const DEFAULT_SCALE_UP_DELAY: u32 = 200;
pub(crate) const DEFAULT_SCALE_DOWN_DELAY: u32 = 1000;

/// `?modelType=` on the Kore deploy route.
pub(crate) const MODEL_TYPES: &[&str] = &["openSource", "fineTune"];
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

    /// OUT_OF_RANGE: valid JSON that breaks a documented range or enum.
    pub(crate) fn out_of_range(field: &str, message: String) -> Self {
        Self::new("OUT_OF_RANGE", field, message)
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
    pub(crate) fn check_wide(&self, field: &str, value: i128) -> Result<i64, RuleViolation> {
        if (i128::from(self.min)..=i128::from(self.max)).contains(&value) {
            Ok(value as i64)
        } else {
            Err(RuleViolation::out_of_range(
                field,
                format!(
                    "{field} must be between {} and {}, but {value} was given",
                    self.min, self.max
                ),
            ))
        }
    }

    /// Like [`check_wide`](Self::check_wide), for fields that are `u32` once valid.
    pub(crate) fn check_u32(&self, field: &str, value: i128) -> Result<u32, RuleViolation> {
        let value = self.check_wide(field, value)?;
        u32::try_from(value).map_err(|_| {
            RuleViolation::out_of_range(
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
            Err(RuleViolation::out_of_range(
                field,
                format!(
                    "{field} must be between {} and {}, but {} was given",
                    self.min,
                    self.max,
                    shown(value)
                ),
            ))
        }
    }
}

/// A real as a message shows it: very small and very large magnitudes in exponent form
/// (`1e-300`, not three hundred zeros).
pub fn shown(value: f64) -> String {
    let magnitude = value.abs();
    if value != 0.0 && value.is_finite() && !(1e-6..1e15).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// `value` if it is one of `allowed`.
pub(crate) fn check_enum<'a>(
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
            format!(
                "{field} must be one of {list}, but {} was given",
                quoted_excerpt(value)
            ),
        ))
    }
}

/// A string whose length in characters lies in `range`.
pub(crate) fn check_chars(field: &str, range: IntRange, value: &str) -> Result<(), RuleViolation> {
    let chars = i64::try_from(value.chars().count()).unwrap_or(i64::MAX);
    if (range.min..=range.max).contains(&chars) {
        Ok(())
    } else {
        Err(RuleViolation::out_of_range(
            field,
            format!(
                "{field} must be {} to {} characters long, but it has {chars}",
                range.min, range.max
            ),
        ))
    }
}

/// topP = 0 keeps no token at all; it is meaningful only for greedy decoding. The sampler
/// takes topP as a 32-bit float, so a given value that is 0 there (1e-300) counts as 0;
/// the message reports the value as given.
pub(crate) fn check_top_p_with_temperature(
    field: &str,
    top_p: f64,
    temperature: f64,
) -> Result<(), RuleViolation> {
    if (top_p as f32) == 0.0 && temperature != 0.0 {
        let given = if top_p == 0.0 {
            "0".to_owned()
        } else {
            format!("{} (0 at the sampler's 32-bit precision)", shown(top_p))
        };
        Err(RuleViolation::out_of_range(
            field,
            format!(
                "{field} must be greater than 0 when temperature is not 0 (0 < topP ≤ 1); \
                 {given} was given with temperature {}",
                shown(temperature)
            ),
        ))
    } else {
        Ok(())
    }
}

/// At most 8 stop sequences of 1–64 bytes each.
pub(crate) fn check_stop_sequences(field: &str, stops: &[String]) -> Result<(), RuleViolation> {
    let count = i64::try_from(stops.len()).unwrap_or(i64::MAX);
    if count > STOP_SEQUENCE_COUNT.max {
        return Err(RuleViolation::out_of_range(
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
            return Err(RuleViolation::out_of_range(
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
pub(crate) fn check_replicas(field: &str, min: u32, max: u32) -> Result<(), RuleViolation> {
    if max >= min {
        Ok(())
    } else {
        Err(RuleViolation::out_of_range(
            field,
            format!("{field} must be at least minReplicas ({min}), but {max} was given"),
        ))
    }
}

/// A modelId is what the Hugging Face Hub accepts as a repo id (huggingface_hub's
/// `validate_repo_id`): `name` or `namespace/name`, each part 1–96 characters of ASCII
/// letters, digits, `-`, `_` and `.`, starting and ending with a letter, digit or `_`,
/// without `--` or `..`, not ending in `.git`; and never in the deployment-id form
/// (`dep-…`), so the two cannot be confused. Local ids (`[models."<id>"]`) follow the
/// same rule: they appear in URLs, cache keys and metric labels.
pub(crate) fn check_model_id(field: &str, id: &str) -> Result<(), RuleViolation> {
    let invalid = |why: &str| {
        RuleViolation::new(
            "INVALID_MODEL_ID",
            field,
            format!(
                "{field} {} is not a valid model id: {why}",
                quoted_excerpt(id)
            ),
        )
    };
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 2 {
        return Err(invalid(
            "it is `name` or `namespace/name`, with one `/` at most",
        ));
    }
    for part in &parts {
        let chars = part.chars().count();
        if !(MODEL_ID_PART_CHARS.min..=MODEL_ID_PART_CHARS.max).contains(&(chars as i64)) {
            return Err(invalid(&format!(
                "each part is {} to {} characters long",
                MODEL_ID_PART_CHARS.min, MODEL_ID_PART_CHARS.max
            )));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !part.chars().all(allowed) {
            return Err(invalid(
                "it may hold only ASCII letters, digits, `-`, `_`, `.` and one `/`",
            ));
        }
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !edge(part.chars().next()) || !edge(part.chars().last()) {
            return Err(invalid(
                "each part starts and ends with a letter, a digit or `_`",
            ));
        }
    }
    if id.contains("--") || id.contains("..") {
        return Err(invalid("it may not contain `--` or `..`"));
    }
    if id.ends_with(".git") {
        return Err(invalid("it may not end in `.git`"));
    }
    if crate::deployment::record::is_deployment_id_form(id) {
        return Err(invalid(
            "`dep-…` is the form of deployment ids, which no modelId may take",
        ));
    }
    Ok(())
}

/// Longest excerpt of a client's value echoed back in an error message (bytes).
pub(crate) const ECHO_MAX_BYTES: usize = 64;

/// `value` cut to [`ECHO_MAX_BYTES`] (on a character boundary), `…` marking a cut, so a
/// huge value is never echoed whole in an error message.
pub(crate) fn excerpt(value: &str) -> String {
    let cut = prefix_within(value, ECHO_MAX_BYTES);
    if cut.len() == value.len() {
        value.to_owned()
    } else {
        format!("{cut}…")
    }
}

/// The longest prefix of `value` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix_within(value: &str, max: usize) -> &str {
    let mut cut = max.min(value.len());
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    &value[..cut]
}

/// [`excerpt`] quoted, with the full length noted when it was cut.
pub(crate) fn quoted_excerpt(value: &str) -> String {
    if value.len() <= ECHO_MAX_BYTES {
        format!("{value:?}")
    } else {
        format!("{:?} ({} bytes)", excerpt(value), value.len())
    }
}

/// A stored string whose length in bytes is at most `max`.
pub(crate) fn check_stored_len(field: &str, value: &str, max: usize) -> Result<(), RuleViolation> {
    if value.len() <= max {
        Ok(())
    } else {
        Err(RuleViolation::out_of_range(
            field,
            format!(
                "{field} may be at most {max} bytes long, but it has {}",
                value.len()
            ),
        ))
    }
}

/// A deployment must serve its own defaults: a one-token prompt (the least a model
/// conditions on) plus the default `maxTokens` must fit the loaded model's context, or
/// every request leaning on the defaults would be refused. Checked before READY.
pub(crate) fn check_defaults_fit(
    field: &str,
    max_tokens: u32,
    limits: runtime::model::ContextLimits,
) -> Result<(), RuleViolation> {
    let mut allowed = limits.max_new_tokens;
    if let Some(total) = limits.max_total_tokens {
        allowed = allowed.min(total.saturating_sub(1));
    }
    if usize::try_from(max_tokens).is_ok_and(|given| given <= allowed) {
        return Ok(());
    }
    let context = match limits.max_total_tokens {
        Some(total) => format!("a context of {total} positions, one of them for the prompt"),
        None => format!("at most {} new tokens per request", limits.max_new_tokens),
    };
    Err(RuleViolation::new(
        "HYPERPARAMETERS_EXCEED_MODEL",
        field,
        format!(
            "{field} is {max_tokens}, but the model allows at most {allowed} ({context}); \
             deploy with {field} of {allowed} or less"
        ),
    ))
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
    fn a_top_p_that_is_zero_as_f32_is_reported_as_given() {
        let error = check_top_p_with_temperature("topP", 1e-300, 0.7).unwrap_err();
        assert!(error.message.contains("1e-300 (0 at"), "{}", error.message);
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
    fn model_ids_are_what_the_hub_accepts() {
        for good in [
            "google/flan-t5-small",
            "gpt2",
            "gpt2-tiny",
            "cm-abc123",
            "Tiny_GPT2.v1",
            "sshleifer/tiny-gpt2",
            &"a".repeat(96),
        ] {
            assert!(check_model_id("modelId", good).is_ok(), "{good}");
        }
        for bad in [
            "../etc",
            "a//b",
            "has space",
            "a/b/c",
            "gpt2-tiny?x",
            "%zz",
            "~root",
            "a\\b",
            "evil\",inj=\"1",
            "model-😀",
            &"a".repeat(97),
            "-lead",
            "trail.",
            "a--b",
            "a..b",
            "repo.git",
            "dep-0f6c1b1e",
            "",
        ] {
            let error = check_model_id("modelId", bad).unwrap_err();
            assert_eq!(error.code, "INVALID_MODEL_ID", "{bad}");
        }
    }

    #[test]
    fn long_values_are_echoed_cut() {
        let long = "x".repeat(900_000);
        let excerpt = quoted_excerpt(&long);
        assert!(excerpt.starts_with("\"xxx"), "{excerpt}");
        assert!(excerpt.len() < 100, "{excerpt}");
        assert!(excerpt.ends_with("…\" (900000 bytes)"), "{excerpt}");
        assert_eq!(quoted_excerpt("ok"), "\"ok\"");
    }
}
