//! Incremental detokenization over a bounded window of ids.
//!
//! Decoding ids one at a time is wrong twice over: a byte-level token can carry half of a
//! UTF-8 character, and SentencePiece drops the leading space of the first token it decodes.
//! So each step decodes a short window `ids[prefix..]` and emits only what it adds beyond
//! `ids[prefix..read]` (the last emitted chunk, kept as context). While the window ends in
//! U+FFFD the last character may still be incomplete, and nothing is emitted yet.

use super::{TextError, TokenDecoder};

const INCOMPLETE_CHARACTER: char = '\u{FFFD}';

pub struct Detokenizer<D: TokenDecoder> {
    decoder: D,
    /// The window: ids from `prefix` on; older ids are dropped once emitted.
    window: Vec<u32>,
    /// End of the context chunk within `window` (its start is always 0): text up to here
    /// has been emitted.
    read: usize,
}

impl<D: TokenDecoder> Detokenizer<D> {
    pub fn new(decoder: D) -> Self {
        Self {
            decoder,
            window: Vec::new(),
            read: 0,
        }
    }

    /// Adds one generated id and returns the text it completes: possibly empty (an
    /// incomplete character, a skipped special token), possibly several characters.
    pub fn push(&mut self, id: u32) -> Result<String, TextError> {
        self.window.push(id);
        let (context, text) = self.decode_window()?;
        if text.ends_with(INCOMPLETE_CHARACTER) {
            return Ok(String::new());
        }
        match new_text_after(&context, &text) {
            Some(delta) if !delta.is_empty() => {
                let delta = delta.to_owned();
                // The chunk just emitted becomes the context of the next step.
                self.window.drain(..self.read);
                self.read = self.window.len();
                Ok(delta)
            }
            _ => Ok(String::new()),
        }
    }

    /// Flushes what `push` held back (at length or EOS), even an incomplete character,
    /// so that all deltas together equal decoding every id at once.
    pub fn finish(&mut self) -> Result<String, TextError> {
        if self.read == self.window.len() {
            return Ok(String::new());
        }
        let (context, text) = self.decode_window()?;
        let delta = new_text_after(&context, &text)
            .unwrap_or_default()
            .to_owned();
        self.window.drain(..self.read);
        self.read = self.window.len();
        Ok(delta)
    }

    /// (text of the context chunk, text of the whole window).
    fn decode_window(&self) -> Result<(String, String), TextError> {
        let context = self.decoder.decode_ids(&self.window[..self.read])?;
        let text = self.decoder.decode_ids(&self.window)?;
        Ok((context, text))
    }
}

/// What `text` adds after `context`. Decoders here are prefix-stable (the window's text
/// starts with the context's text); if one is not, the split falls on the context's length
/// as long as that is a character boundary, and otherwise nothing is emitted yet.
fn new_text_after<'a>(context: &str, text: &'a str) -> Option<&'a str> {
    text.get(context.len()..)
}
