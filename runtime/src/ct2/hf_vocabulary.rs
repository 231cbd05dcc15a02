//! The token list of a Hugging Face tokenizer, ordered by id — what `tokenizer.get_vocab()`
//! sorted by id gives CTranslate2's converter — read from `tokenizer.json`, or from
//! `vocab.json` plus the added tokens of `tokenizer_config.json`, and the special tokens
//! named in `special_tokens_map.json` / `tokenizer_config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::error::ConvertError;
use super::source::read_json;

/// Tokens by id, and the file they came from (for error messages).
pub struct HfVocabulary {
    pub tokens: Vec<String>,
    pub source_file: &'static str,
}

impl HfVocabulary {
    pub fn read(dir: &Path) -> Result<HfVocabulary, ConvertError> {
        let mut by_id: BTreeMap<u64, String> = BTreeMap::new();
        let source_file;
        let tokenizer_json = dir.join("tokenizer.json");
        let vocab_json = dir.join("vocab.json");
        if tokenizer_json.is_file() {
            source_file = "tokenizer.json";
            let json = read_json(&tokenizer_json)?;
            let bad = |problem: &str| ConvertError::ConfigField {
                path: tokenizer_json.clone(),
                field: "model.vocab".into(),
                problem: problem.into(),
            };
            match json.pointer("/model/vocab") {
                // BPE and WordPiece: token → id.
                Some(Value::Object(map)) => {
                    for (token, id) in map {
                        let id = id.as_u64().ok_or_else(|| bad("has a non-integer id"))?;
                        by_id.insert(id, token.clone());
                    }
                }
                // Unigram (SentencePiece): [piece, score] in id order.
                Some(Value::Array(pieces)) => {
                    for (id, piece) in pieces.iter().enumerate() {
                        let token = piece
                            .get(0)
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("has an entry that is not [piece, score]"))?;
                        by_id.insert(id as u64, token.to_string());
                    }
                }
                _ => return Err(bad("must be an object or a list of [piece, score]")),
            }
            if let Some(added) = json.get("added_tokens").and_then(Value::as_array) {
                for token in added {
                    if let (Some(id), Some(content)) = (
                        token.get("id").and_then(Value::as_u64),
                        token.get("content").and_then(Value::as_str),
                    ) {
                        by_id.insert(id, content.to_string());
                    }
                }
            }
        } else if vocab_json.is_file() {
            source_file = "vocab.json";
            let json = read_json(&vocab_json)?;
            let map = json.as_object().ok_or_else(|| ConvertError::ConfigField {
                path: vocab_json.clone(),
                field: "(top level)".into(),
                problem: "must be an object of token → id".into(),
            })?;
            for (token, id) in map {
                let id = id.as_u64().ok_or_else(|| ConvertError::ConfigField {
                    path: vocab_json.clone(),
                    field: token.clone(),
                    problem: "must map to an integer id".into(),
                })?;
                by_id.insert(id, token.clone());
            }
            // Tokens added on top of vocab.json (the slow tokenizer's added_tokens_decoder).
            let config = dir.join("tokenizer_config.json");
            if config.is_file() {
                let json = read_json(&config)?;
                if let Some(added) = json.get("added_tokens_decoder").and_then(Value::as_object) {
                    for (id, token) in added {
                        if let (Ok(id), Some(content)) = (
                            id.parse::<u64>(),
                            token.get("content").and_then(Value::as_str),
                        ) {
                            by_id.insert(id, content.to_string());
                        }
                    }
                }
            }
        } else {
            return Err(ConvertError::MissingVocabulary {
                dir: dir.to_path_buf(),
            });
        }
        Ok(HfVocabulary {
            tokens: by_id.into_values().collect(),
            source_file,
        })
    }
}

/// A special token (`bos_token`, `eos_token`, ...) as the tokenizer declares it, from
/// `special_tokens_map.json`, then `tokenizer_config.json`; `None` when neither names it.
pub fn special_token(dir: &Path, key: &str) -> Result<Option<String>, ConvertError> {
    for file in ["special_tokens_map.json", "tokenizer_config.json"] {
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let json = read_json(&path)?;
        match json.get(key) {
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(Value::Object(o)) => {
                if let Some(content) = o.get("content").and_then(Value::as_str) {
                    return Ok(Some(content.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}
