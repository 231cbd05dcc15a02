//! For any text, streaming its ids through the detokenizer gives exactly the full decode,
//! and no delta carries half a character, with both real tokenizers.

use std::sync::LazyLock;

use proptest::prelude::*;
use runtime::text::{Detokenizer, TokenDecoder};
use tokenizers::Tokenizer;

use crate::fixtures::{encode, gpt2_tokenizer, t5_tokenizer};

fn assert_streams_to_full_decode(tokenizer: &Tokenizer, text: &str) -> Result<(), TestCaseError> {
    let ids = encode(tokenizer, text);
    let mut detokenizer = Detokenizer::new(tokenizer);
    let mut streamed = String::new();
    for &id in &ids {
        let delta = detokenizer.push(id).expect("decodes");
        // Every U+FFFD a delta carries is one the full decode has too (text has none).
        prop_assert!(!delta.contains('\u{FFFD}'), "{delta:?} in {text:?}");
        streamed += &delta;
    }
    streamed += &detokenizer.finish().expect("decodes");
    prop_assert_eq!(streamed, tokenizer.decode_ids(&ids).expect("decodes"));
    Ok(())
}

// Loaded once: reading tokenizer.json dominates a case otherwise.
static GPT2: LazyLock<Tokenizer> = LazyLock::new(gpt2_tokenizer);
static T5: LazyLock<Tokenizer> = LazyLock::new(t5_tokenizer);

// Words, spaces, punctuation, accents, CJK and emoji (4-byte, split over several GPT-2 byte
// tokens; unknown to T5's vocabulary).
const TEXT: &str = "([a-zA-Z]{1,6}|[ ,.!?\n]|[éüñ]|[中文字]|[😀🎉👍]){0,24}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gpt2_streamed_deltas_equal_the_full_decode_of_any_text(text in TEXT) {
        assert_streams_to_full_decode(&GPT2, &text)?;
    }

    #[test]
    fn t5_streamed_deltas_equal_the_full_decode_of_any_text(text in TEXT) {
        assert_streams_to_full_decode(&T5, &text)?;
    }
}
