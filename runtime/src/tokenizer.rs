//! Text ↔ token ids, matching Hugging Face's fast tokenizers id for id: `tokenizer.json`
//! through the `tokenizers` crate, or GPT-2's byte-level BPE rebuilt from `vocab.json` +
//! `merges.txt` the way transformers' `GPT2TokenizerFast` builds it.

use std::path::Path;

use thiserror::Error;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use crate::checkpoint::{Checkpoint, TokenizerFiles};
use crate::load_error::LoadError;
use crate::model::Architecture;

/// GPT-2's only special token: end of text, also its BOS/EOS/UNK.
const GPT2_END_OF_TEXT: &str = "<|endoftext|>";
/// End-of-sequence spellings of the supported families, tried in order.
const EOS_TOKENS: [&str; 2] = ["</s>", GPT2_END_OF_TEXT];
/// Prompts longer than this are counted piece by piece, in pieces of about this size,
/// before they are encoded whole (see [`Tokenizer::encode_at_most`]).
const COUNT_PIECE_BYTES: usize = 8 * 1024;

#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("cannot encode the text: {0}")]
    Encode(String),
    #[error("cannot decode token ids {ids:?}: {message}")]
    Decode { ids: Vec<u32>, message: String },
}

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_token_id: u32,
    /// T5 inputs end with `</s>`; added here only when `tokenizer.json` has no post-processor
    /// that already does it.
    append_eos: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("eos_token_id", &self.eos_token_id)
            .field("append_eos", &self.append_eos)
            .finish()
    }
}

impl Tokenizer {
    /// The tokenizer of a checkpoint; its EOS id is the one `config.json` names.
    pub fn load(dir: &Checkpoint) -> Result<Self, LoadError> {
        let mut tokenizer = match dir.tokenizer_files() {
            TokenizerFiles::Json(path) => Self::from_json_file(path)?,
            TokenizerFiles::Gpt2Bpe { vocab, merges } => Self::from_gpt2_files(vocab, merges)?,
        };
        tokenizer.eos_token_id = dir.eos_token_id();
        tokenizer.append_eos = dir.architecture() == Architecture::T5
            && tokenizer.inner.get_post_processor().is_none();
        Ok(tokenizer)
    }

    /// A complete `tokenizer.json`, used as it is (normalizer, pre-tokenizer, post-processor).
    pub fn from_json_file(path: &Path) -> Result<Self, LoadError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| LoadError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::with_eos_from_vocabulary(inner, path)
    }

    /// GPT-2's byte-level BPE from `vocab.json` + `merges.txt`: no prefix space, byte-level
    /// pre-tokenizer and decoder, `<|endoftext|>` as the special token.
    pub fn from_gpt2_files(vocab: &Path, merges: &Path) -> Result<Self, LoadError> {
        let unreadable = |path: &Path, message: String| LoadError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let (vocab_str, merges_str) = match (vocab.to_str(), merges.to_str()) {
            (Some(v), Some(m)) => (v, m),
            _ => return Err(unreadable(vocab, "path is not valid UTF-8".to_string())),
        };
        let bpe = BPE::from_file(vocab_str, merges_str)
            .build()
            .map_err(|e| unreadable(vocab, e.to_string()))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
            .with_decoder(Some(ByteLevel::default()))
            .with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
        if inner.token_to_id(GPT2_END_OF_TEXT).is_none() {
            return Err(unreadable(
                vocab,
                format!("GPT-2 vocabulary has no {GPT2_END_OF_TEXT} token"),
            ));
        }
        inner.add_special_tokens(&[AddedToken::from(GPT2_END_OF_TEXT, true)]);
        Self::with_eos_from_vocabulary(inner, vocab)
    }

    fn with_eos_from_vocabulary(
        inner: tokenizers::Tokenizer,
        path: &Path,
    ) -> Result<Self, LoadError> {
        let eos_token_id = EOS_TOKENS
            .iter()
            .find_map(|token| inner.token_to_id(token))
            .ok_or_else(|| LoadError::Tokenizer {
                path: path.to_path_buf(),
                message: format!("no end-of-sequence token (one of {EOS_TOKENS:?})"),
            })?;
        Ok(Self {
            inner,
            eos_token_id,
            append_eos: false,
        })
    }

    /// The ids Hugging Face's `tokenizer(text)["input_ids"]` gives: T5 ends with `</s>`,
    /// GPT-2 adds nothing.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        if self.append_eos && ids.last() != Some(&self.eos_token_id) {
            ids.push(self.eos_token_id);
        }
        Ok(ids)
    }

    /// The ids of `text` when it has at most `max_tokens` of them; otherwise a lower bound
    /// on its count, found without encoding the whole text when it is long.
    ///
    /// Long texts are counted in pieces cut just before a whitespace run that follows a
    /// non-space character, without special tokens, stopping once the count passes
    /// `max_tokens`. Why the count is sound: both families' pre-tokenizers (GPT-2's
    /// byte-level regex, T5's Metaspace) split at every such point, and their models
    /// encode each pre-token on its own, so a piece's tokens are exactly the text's
    /// tokens over that stretch; the normalizers in use act on single characters or on
    /// space runs, which a cut never divides, or on the text's end, which no piece but
    /// the last one reaches. So a running count past the limit proves the whole text is
    /// past it; the work and memory are bounded by the limit, not by the text's length
    /// (a whitespace-free stretch is one piece, however long). `tests/models/tokenizer.rs`
    /// checks the piece counts against whole encodings for both fixture tokenizers.
    pub fn encode_at_most(
        &self,
        text: &str,
        max_tokens: usize,
    ) -> Result<BoundedEncoding, TokenizerError> {
        if text.len() > COUNT_PIECE_BYTES {
            let mut counted = 0;
            for piece in whitespace_pieces(text, COUNT_PIECE_BYTES) {
                counted += self.count_without_specials(piece)?;
                if counted > max_tokens {
                    return Ok(BoundedEncoding::TooLong { at_least: counted });
                }
            }
        }
        let ids = self.encode(text)?;
        Ok(if ids.len() > max_tokens {
            BoundedEncoding::TooLong {
                at_least: ids.len(),
            }
        } else {
            BoundedEncoding::Ids(ids)
        })
    }

    /// Tokens of `text` without the post-processor's special tokens.
    pub fn count_without_specials(&self, text: &str) -> Result<usize, TokenizerError> {
        self.inner
            .encode_fast(text, false)
            .map(|encoding| encoding.len())
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Text of `ids` with special tokens skipped (`decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Decode {
                ids: ids.to_vec(),
                message: e.to_string(),
            })
    }

    pub fn eos_token_id(&self) -> u32 {
        self.eos_token_id
    }

    /// Entries including added tokens (T5's `<extra_id_N>`); the model's embedding may be
    /// larger (Flan-T5 pads it to 32,128).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying Hugging Face tokenizer (incremental decoding, offsets).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// What [`Tokenizer::encode_at_most`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundedEncoding {
    /// The text's ids, no more than the limit.
    Ids(Vec<u32>),
    /// More tokens than the limit: at least this many.
    TooLong { at_least: usize },
}

/// `text` cut into pieces of at least `min_bytes` (the last may be shorter), each cut
/// placed just before a whitespace run that follows a non-whitespace character.
pub fn whitespace_pieces(text: &str, min_bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = next_cut(rest, min_bytes).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// The first byte offset at or after `min_bytes` where a whitespace character follows a
/// non-whitespace one.
fn next_cut(text: &str, min_bytes: usize) -> Option<usize> {
    let mut previous_is_space = true;
    for (offset, c) in text.char_indices() {
        let is_space = c.is_whitespace();
        if offset >= min_bytes && is_space && !previous_is_space {
            return Some(offset);
        }
        previous_is_space = is_space;
    }
    None
}

/// Streaming detokenization decodes through the wrapped tokenizer, which skips special
/// tokens exactly as [`Tokenizer::decode`] does.
impl crate::text::TokenDecoder for Tokenizer {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, crate::text::TextError> {
        self.inner.decode_ids(ids)
    }
}
