//! For any text, streaming its ids through the detokenizer gives exactly the full decode,
//! and no delta carries half a character, with both real tokenizers. A model may emit any
//! id in any order, so the same holds for arbitrary id sequences, GPT-2's byte tokens that
//! leave a character incomplete included.

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

/// Streams arbitrary `ids`: the deltas add up to the full decode, so a replacement
/// character appears only where the full decode has one (a byte sequence left incomplete
/// at the end, or an invalid one), never for half a character a later id completes.
fn assert_ids_stream_to_full_decode(
    tokenizer: &Tokenizer,
    ids: &[u32],
) -> Result<(), TestCaseError> {
    let mut detokenizer = Detokenizer::new(tokenizer);
    let mut streamed = String::new();
    for &id in ids {
        streamed += &detokenizer.push(id).expect("decodes");
    }
    streamed += &detokenizer.finish().expect("decodes");
    prop_assert_eq!(
        streamed,
        tokenizer.decode_ids(ids).expect("decodes"),
        "ids {:?}",
        ids
    );
    Ok(())
}

/// The ids of GPT-2's single-byte tokens for the bytes 0x80..=0xFF: the pieces of multi-byte
/// UTF-8 characters, which alone or out of order are incomplete or invalid text. GPT-2 spells
/// byte `b` as a printable character: itself for the printable Latin-1 bytes, U+0100 plus
/// its rank among the others otherwise.
fn gpt2_high_byte_ids() -> Vec<u32> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut others = 0;
    let mut ids = Vec::new();
    for byte in 0u32..=0xff {
        let symbol = if printable(byte) {
            char::from_u32(byte)
        } else {
            others += 1;
            char::from_u32(0xff + others)
        }
        .expect("a valid char");
        if byte >= 0x80 {
            ids.push(
                GPT2.token_to_id(&symbol.to_string())
                    .expect("every byte is a GPT-2 token"),
            );
        }
    }
    ids
}

/// Any id of the vocabulary, or (for GPT-2) often one of its high-byte tokens.
fn gpt2_ids() -> impl Strategy<Value = Vec<u32>> {
    let vocab = GPT2.get_vocab_size(true) as u32;
    let bytes = gpt2_high_byte_ids();
    prop::collection::vec(prop_oneof![0..vocab, prop::sample::select(bytes)], 0..24)
}

fn t5_ids() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0..T5.get_vocab_size(true) as u32, 0..24)
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gpt2_streamed_deltas_equal_the_full_decode_of_any_ids(ids in gpt2_ids()) {
        assert_ids_stream_to_full_decode(&GPT2, &ids)?;
    }

    #[test]
    fn t5_streamed_deltas_equal_the_full_decode_of_any_ids(ids in t5_ids()) {
        assert_ids_stream_to_full_decode(&T5, &ids)?;
    }
}
