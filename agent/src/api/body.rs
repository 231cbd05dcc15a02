//! Reading request bodies field by field, so that every error names the JSON path of the
//! field at fault: malformed JSON and wrong types are 400, absent required fields 422.
//! Keys nobody asked for are reported by [`JsonObject::unknown_keys`] (logged, not refused).

use std::cell::RefCell;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses a whole body as one JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "the request body is empty; a JSON object is expected",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::malformed(format!("the request body is not valid JSON: {error}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::malformed(format!(
            "the request body must be a JSON object, but {} was given",
            type_name(&value)
        )));
    }
    Ok(value)
}

/// The JSON type of `value`, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object at `path` (`""` for the body itself), remembering which keys were read.
pub(crate) struct JsonObject<'a> {
    path: String,
    map: &'a Map<String, Value>,
    read: RefCell<Vec<String>>,
}

impl<'a> JsonObject<'a> {
    /// The body itself; `value` must be an object (see [`parse_object`]).
    pub fn root(value: &'a Value) -> Result<Self, ApiError> {
        Self::nested(String::new(), value)
    }

    /// An object found at `path` (its keys' paths start with `path.`).
    pub(crate) fn nested(path: impl Into<String>, value: &'a Value) -> Result<Self, ApiError> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(JsonObject {
                path,
                map,
                read: RefCell::new(Vec::new()),
            }),
            other => Err(ApiError::wrong_type(
                if path.is_empty() { "body" } else { &path },
                "an object",
                type_name(other),
            )),
        }
    }

    /// The JSON path of `key` in this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; `null` counts as absent.
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.read.borrow_mut().push(key.to_owned());
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The first of `keys` that is present (for accepted spellings of one field), with the
    /// key it was found under.
    pub(crate) fn value_any(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        let mut found = None;
        for key in keys {
            if let Some(value) = self.value(key) {
                found = found.or(Some((*key, value)));
            }
        }
        found
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        self.value(key)
            .map(|v| as_str(&self.path_of(key), v))
            .transpose()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.value(key)
            .map(|v| as_bool(&self.path_of(key), v))
            .transpose()
    }

    /// An integer as given, u64 values beyond i64 included, so a range check reports the
    /// value sent rather than 2^63−1.
    pub fn integer(&self, key: &str) -> Result<Option<i128>, ApiError> {
        self.wide_integer(key)
    }

    /// An integer as given, u64 values beyond i64 included: [`as_integer`] clamps those to
    /// i64::MAX, which a range ending at i64::MAX (seeds) would accept.
    pub(crate) fn wide_integer(&self, key: &str) -> Result<Option<i128>, ApiError> {
        self.value(key)
            .map(|v| match v {
                Value::Number(n) if n.is_u64() => Ok(i128::from(n.as_u64().unwrap_or(u64::MAX))),
                other => as_integer(&self.path_of(key), other).map(i128::from),
            })
            .transpose()
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, ApiError> {
        self.value(key)
            .map(|v| as_number(&self.path_of(key), v))
            .transpose()
    }

    pub fn object(&self, key: &str) -> Result<Option<JsonObject<'a>>, ApiError> {
        self.value(key)
            .map(|v| JsonObject::nested(self.path_of(key), v))
            .transpose()
    }

    /// An array of strings; an element of another type is named by its index.
    pub(crate) fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        let path = self.path_of(key);
        let items = value
            .as_array()
            .ok_or_else(|| ApiError::wrong_type(&path, "an array of strings", type_name(value)))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| as_str(&format!("{path}[{i}]"), item).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Keys present in the object that no reader asked for, as JSON paths.
    pub(crate) fn unknown_keys(&self) -> Vec<String> {
        let read = self.read.borrow();
        self.map
            .keys()
            .filter(|k| !read.iter().any(|r| r == *k))
            .map(|k| self.path_of(k))
            .collect()
    }
}

pub fn as_str<'v>(path: &str, value: &'v Value) -> Result<&'v str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| ApiError::wrong_type(path, "a string", type_name(value)))
}

pub(crate) fn as_bool(path: &str, value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| ApiError::wrong_type(path, "a boolean", type_name(value)))
}

/// An integer; one too large for i64 saturates so the range check reports it.
pub fn as_integer(path: &str, value: &Value) -> Result<i64, ApiError> {
    match value {
        Value::Number(n) if n.is_i64() => n.as_i64().ok_or_else(|| unreachable_number(path)),
        Value::Number(n) if n.is_u64() => Ok(i64::MAX),
        other => Err(ApiError::wrong_type(path, "an integer", type_name(other))),
    }
}

pub(crate) fn as_number(path: &str, value: &Value) -> Result<f64, ApiError> {
    value
        .as_f64()
        .ok_or_else(|| ApiError::wrong_type(path, "a number", type_name(value)))
}

fn unreachable_number(path: &str) -> ApiError {
    ApiError::wrong_type(path, "an integer", "a number")
}

/// Logs keys the surface does not know; they are ignored, as the API promises.
pub(crate) fn log_unknown_keys(surface: &str, objects: &[&JsonObject<'_>]) {
    let unknown: Vec<String> = objects.iter().flat_map(|o| o.unknown_keys()).collect();
    if !unknown.is_empty() {
        tracing::info!(surface, fields = ?unknown, "ignoring unknown request fields");
    }
}
