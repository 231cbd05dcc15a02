//! The one capability detokenization needs from a tokenizer: ids → text.

use std::sync::Arc;

use super::TextError;

/// Decodes token ids to text, leaving special tokens (`</s>`, `<|endoftext|>`, pads) out.
pub trait TokenDecoder {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, TextError>;
}

impl TokenDecoder for tokenizers::Tokenizer {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, TextError> {
        self.decode(ids, true).map_err(|e| TextError::Decode {
            token_count: ids.len(),
            first_id: ids.first().copied(),
            message: e.to_string(),
        })
    }
}

impl<T: TokenDecoder + ?Sized> TokenDecoder for Arc<T> {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, TextError> {
        (**self).decode_ids(ids)
    }
}

impl<T: TokenDecoder + ?Sized> TokenDecoder for &T {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, TextError> {
        (**self).decode_ids(ids)
    }
}
