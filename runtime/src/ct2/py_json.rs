//! JSON text exactly as Python's `json.dump(obj, f, indent=2, sort_keys=True)` writes it
//! (the default `ensure_ascii=True`), so converted `config.json` and vocabulary files are
//! byte-identical to those of CTranslate2's own converter.

use std::collections::BTreeMap;

/// The values CTranslate2's converter writes in these files.
#[derive(Clone, Debug, PartialEq)]
pub enum PyJson {
    Null,
    Bool(bool),
    Str(String),
    List(Vec<PyJson>),
    /// Keys sorted (`sort_keys=True`); BTreeMap orders UTF-8 bytes as Python orders code points.
    Object(BTreeMap<String, PyJson>),
}

impl PyJson {
    /// The text `json.dump(.., indent=2)` produces (no trailing newline).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_value(self, 0, &mut out);
        out
    }
}

fn write_value(value: &PyJson, depth: usize, out: &mut String) {
    match value {
        PyJson::Null => out.push_str("null"),
        PyJson::Bool(true) => out.push_str("true"),
        PyJson::Bool(false) => out.push_str("false"),
        PyJson::Str(s) => write_string(s, out),
        PyJson::List(items) if items.is_empty() => out.push_str("[]"),
        PyJson::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(depth + 1, out);
                write_value(item, depth + 1, out);
            }
            out.push('\n');
            indent(depth, out);
            out.push(']');
        }
        PyJson::Object(map) if map.is_empty() => out.push_str("{}"),
        PyJson::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(depth + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(item, depth + 1, out);
            }
            out.push('\n');
            indent(depth, out);
            out.push('}');
        }
    }
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Python's `ensure_ascii` escaping: printable ASCII as is, the usual short escapes,
/// everything else as `\uXXXX` (lower-case hex, surrogate pairs above U+FFFF).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_python_ensure_ascii() {
        let text = PyJson::Str("a\"\\\n\t\u{7f}▁é😀\u{1}".into()).to_text();
        assert_eq!(text, r#""a\"\\\n\t\u007f\u2581\u00e9\ud83d\ude00\u0001""#);
    }

    #[test]
    fn lists_and_objects_indent_by_two_with_sorted_keys() {
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), PyJson::Null);
        map.insert("a".to_string(), PyJson::List(vec![PyJson::Bool(true)]));
        map.insert("c".to_string(), PyJson::List(vec![]));
        assert_eq!(
            PyJson::Object(map).to_text(),
            "{\n  \"a\": [\n    true\n  ],\n  \"b\": null,\n  \"c\": []\n}"
        );
    }
}
