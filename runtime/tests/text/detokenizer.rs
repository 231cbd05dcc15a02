use std::cell::Cell;
use std::sync::Arc;

use runtime::text::{Detokenizer, TextError, TokenDecoder};
use tokenizers::Tokenizer;

use crate::fixtures::{encode, golden_continuations, gpt2_tokenizer, t5_tokenizer};

/// Pushes every id, then flushes; returns the deltas (the flush last).
fn stream<D: TokenDecoder>(decoder: D, ids: &[u32]) -> Vec<String> {
    let mut detokenizer = Detokenizer::new(decoder);
    let mut deltas: Vec<String> = ids
        .iter()
        .map(|&id| detokenizer.push(id).expect("decodes"))
        .collect();
    deltas.push(detokenizer.finish().expect("decodes"));
    deltas
}

fn assert_streams_to_full_decode(tokenizer: &Tokenizer, ids: &[u32]) {
    let full = tokenizer.decode_ids(ids).expect("decodes");
    assert_eq!(stream(tokenizer, ids).concat(), full, "ids {ids:?}");
}

#[test]
fn gpt2_golden_continuations_stream_to_exactly_their_full_decode() {
    let tokenizer = gpt2_tokenizer();
    for ids in golden_continuations("gpt2-tiny") {
        assert_streams_to_full_decode(&tokenizer, &ids);
    }
}

#[test]
fn t5_golden_continuations_stream_to_exactly_their_full_decode() {
    let tokenizer = t5_tokenizer();
    for ids in golden_continuations("t5-tiny") {
        assert_streams_to_full_decode(&tokenizer, &ids);
    }
}

#[test]
fn t5_keeps_the_space_between_words_that_sentencepiece_strips_when_decoding_alone() {
    let tokenizer = t5_tokenizer();
    let ids = encode(&tokenizer, "Hello world, how are you?");
    // Decoded one at a time, " world" loses its space: the reason for the context window.
    let alone = tokenizer.decode_ids(&ids[1..2]).unwrap();
    assert!(!alone.starts_with(' '), "{alone:?}");
    let deltas = stream(&tokenizer, &ids);
    assert_eq!(deltas[0], "Hello");
    assert_eq!(deltas[1], " world");
    assert_eq!(deltas.concat(), "Hello world, how are you?");
}

#[test]
fn multi_byte_characters_split_across_gpt2_tokens_are_emitted_whole() {
    let tokenizer = gpt2_tokenizer();
    let text = "emoji 😀🎉 and 中文字符 and naïve";
    let ids = encode(&tokenizer, text);
    // Precondition: some tokens carry only part of a character.
    let partial = ids
        .iter()
        .filter(|&&id| tokenizer.decode_ids(&[id]).unwrap().contains('\u{FFFD}'))
        .count();
    assert!(partial >= 3, "only {partial} partial tokens in {ids:?}");

    let deltas = stream(&tokenizer, &ids);
    for delta in &deltas {
        assert!(!delta.contains('\u{FFFD}'), "half a character in {delta:?}");
    }
    assert!(deltas.iter().any(|d| d.is_empty()), "some pushes wait");
    assert_eq!(deltas.concat(), text);
}

#[test]
fn an_incomplete_character_at_the_end_is_held_until_finish() {
    let tokenizer = gpt2_tokenizer();
    let ids = encode(&tokenizer, "ok 😀");
    let mut detokenizer = Detokenizer::new(&tokenizer);
    let mut text = String::new();
    // Every token but the last: the emoji is incomplete.
    for &id in &ids[..ids.len() - 1] {
        text += &detokenizer.push(id).unwrap();
    }
    assert_eq!(text, "ok");
    let flushed = detokenizer.finish().unwrap();
    assert_eq!(
        text + &flushed,
        tokenizer.decode_ids(&ids[..ids.len() - 1]).unwrap()
    );
    assert!(flushed.ends_with('\u{FFFD}'));
}

#[test]
fn invalid_bytes_followed_by_text_are_emitted_as_the_full_decode_shows_them() {
    let tokenizer = gpt2_tokenizer();
    let emoji = encode(&tokenizer, "😀");
    // The emoji's first byte-token alone, then ordinary words: the replacement character
    // is final once text follows it, and appears exactly once, as in the full decode.
    let mut ids = vec![emoji[0]];
    ids.extend(encode(&tokenizer, " and more"));
    assert_streams_to_full_decode(&tokenizer, &ids);
}

#[test]
fn special_tokens_are_skipped() {
    let tokenizer = gpt2_tokenizer();
    let mut ids = encode(&tokenizer, "Hello");
    ids.push(50256); // <|endoftext|>
    ids.extend(encode(&tokenizer, " there"));
    assert_eq!(stream(&tokenizer, &ids).concat(), "Hello there");
}

/// The real tokenizer, recording the longest id slice it was asked to decode.
struct WindowRecorder<'a> {
    tokenizer: &'a Tokenizer,
    longest: Cell<usize>,
}

impl TokenDecoder for WindowRecorder<'_> {
    fn decode_ids(&self, ids: &[u32]) -> Result<String, TextError> {
        self.longest.set(self.longest.get().max(ids.len()));
        self.tokenizer.decode_ids(ids)
    }
}

#[test]
fn each_step_decodes_a_short_window_not_the_whole_sequence() {
    let tokenizer = gpt2_tokenizer();
    let text = "A long stream of ordinary words with an emoji 😀 now and then. ".repeat(20);
    let ids = encode(&tokenizer, &text);
    assert!(ids.len() > 200);
    let recorder = WindowRecorder {
        tokenizer: &tokenizer,
        longest: Cell::new(0),
    };
    assert_eq!(stream(&recorder, &ids).concat(), text);
    // Context chunk + pending tokens of one character: a handful, whatever the length.
    assert!(
        recorder.longest.get() <= 8,
        "window of {}",
        recorder.longest.get()
    );
}

#[test]
fn a_shared_tokenizer_decodes_through_arc() {
    let tokenizer = Arc::new(t5_tokenizer());
    let ids = encode(&tokenizer, "Das Haus ist wunderbar.");
    assert_eq!(
        stream(Arc::clone(&tokenizer), &ids).concat(),
        "Das Haus ist wunderbar."
    );
}
