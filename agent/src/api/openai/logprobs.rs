//! Logprobs in OpenAI's two shapes (`docs/api.md`, logprobs), from the runtime's: the
//! raw log-softmax of the model's logits before temperature, top-k and top-p
//! (`docs/sampling.md` § Log-probabilities). Completions list `tokens`, `token_logprobs`,
//! `top_logprobs` (token text → logprob) and `text_offset` (characters from the start of
//! the prompt); chat lists `content` entries of `{token, logprob, bytes, top_logprobs}`.

use runtime::batcher::TokenLogprob;
use runtime::tokenizer::Tokenizer;
use serde_json::{json, Map, Value};

/// A choice's token texts and character offsets, built one token at a time (streaming
/// reads them as they come). A token's text is what it adds to the decoded text, found by
/// decoding it with the tokens since the last complete piece (as TGI's incremental
/// detokenizer does), so the texts concatenate to the decoded text — SentencePiece's word
/// spaces included. A token that ends inside a UTF-8 character adds `""`; the token that
/// completes the character carries all of it.
#[derive(Clone, Debug, Default)]
pub(crate) struct TokenTexts {
    ids: Vec<u32>,
    /// Where the tokens decoded as context for the next one start.
    prefix_start: usize,
    /// Where the tokens not yet attributed any text start.
    read_start: usize,
    /// Characters of text before the next token.
    offset: usize,
}

impl TokenTexts {
    /// Offsets start at `offset` characters (the prompt's length, when it is not echoed).
    pub(crate) fn starting_at(offset: usize) -> Self {
        TokenTexts {
            offset,
            ..TokenTexts::default()
        }
    }

    /// The text `id` adds after the tokens pushed so far, and its character offset.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> (String, usize) {
        self.ids.push(id);
        let context = decode(tokenizer, &self.ids[self.prefix_start..self.read_start]);
        let with = decode(tokenizer, &self.ids[self.prefix_start..]);
        let added = match with.strip_prefix(context.as_str()) {
            Some(added) if !added.is_empty() && !added.ends_with(char::REPLACEMENT_CHARACTER) => {
                Some(added.to_owned())
            }
            _ => None,
        };
        let offset = self.offset;
        let text = match added {
            Some(text) => {
                self.prefix_start = self.read_start;
                self.read_start = self.ids.len();
                text
            }
            None => String::new(),
        };
        self.offset += text.chars().count();
        (text, offset)
    }
}

/// The text of `ids`; a token the tokenizer cannot decode adds nothing.
fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> String {
    tokenizer.decode(ids).unwrap_or_default()
}

/// Completions' `logprobs` object, built token by token.
#[derive(Default)]
pub(crate) struct CompletionLogprobs {
    tokens: Vec<Value>,
    token_logprobs: Vec<Value>,
    top_logprobs: Vec<Value>,
    text_offset: Vec<Value>,
}

impl CompletionLogprobs {
    /// Appends token `id` with its logprob (`None` for the prompt's first token, which
    /// nothing predicts).
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        texts: &mut TokenTexts,
        id: u32,
        logprob: Option<&TokenLogprob>,
    ) {
        let (text, offset) = texts.push(tokenizer, id);
        self.tokens.push(json!(text));
        self.text_offset.push(json!(offset));
        match logprob {
            Some(scored) => {
                self.token_logprobs.push(number(scored.logprob));
                let top: Map<String, Value> = scored
                    .top
                    .iter()
                    .map(|&(alt, lp)| (decode(tokenizer, &[alt]), number(lp)))
                    .collect();
                self.top_logprobs.push(Value::Object(top));
            }
            None => {
                self.token_logprobs.push(Value::Null);
                self.top_logprobs.push(Value::Null);
            }
        }
    }

    pub(crate) fn into_json(self) -> Value {
        json!({
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        })
    }
}

/// One entry of chat's `logprobs.content`.
pub(crate) fn chat_entry(
    tokenizer: &Tokenizer,
    texts: &mut TokenTexts,
    id: u32,
    logprob: &TokenLogprob,
) -> Value {
    let (text, _) = texts.push(tokenizer, id);
    let top: Vec<Value> = logprob
        .top
        .iter()
        .map(|&(alt, lp)| {
            let alt_text = decode(tokenizer, &[alt]);
            json!({"token": alt_text, "logprob": number(lp), "bytes": alt_text.as_bytes()})
        })
        .collect();
    json!({"token": text, "logprob": number(logprob.logprob), "bytes": text.as_bytes(), "top_logprobs": top})
}

/// A logprob as JSON; `-inf` (a token the model gives no chance) is sent as the lowest
/// finite f32, as JSON has no infinity.
fn number(logprob: f32) -> Value {
    let finite = if logprob.is_finite() {
        logprob
    } else {
        f32::MIN
    };
    json!(finite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::checkpoint::Checkpoint;

    fn tokenizer(fixture: &str) -> Tokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(fixture);
        Tokenizer::load(&Checkpoint::open(dir).expect("fixture opens")).expect("tokenizer")
    }

    #[test]
    fn token_texts_concatenate_to_the_text_with_character_offsets() {
        for fixture in ["gpt2-tiny", "t5-tiny"] {
            let tokenizer = tokenizer(fixture);
            let text = "Héllo, my name is Zoë and I like 🦀 crabs";
            let ids = tokenizer.encode(text).expect("encodes");
            let decoded = tokenizer.decode(&ids).expect("decodes");
            let mut texts = TokenTexts::starting_at(7);
            let mut joined = String::new();
            for &id in &ids {
                let (piece, offset) = texts.push(&tokenizer, id);
                assert_eq!(offset, 7 + joined.chars().count(), "{fixture}");
                joined.push_str(&piece);
            }
            assert_eq!(joined, decoded, "{fixture}");
        }
    }

    #[test]
    fn an_impossible_token_is_sent_as_the_lowest_finite_logprob() {
        assert_eq!(number(f32::NEG_INFINITY), json!(f32::MIN));
        assert_eq!(number(-0.5), json!(-0.5f32));
    }
}
