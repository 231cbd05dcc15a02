//! Stop strings over the real GPT-2 tokenizer's stream: detokenizer → stop matcher.

use runtime::text::{Detokenizer, StopMatcher, TokenDecoder};
use tokenizers::Tokenizer;

use crate::fixtures::{encode, gpt2_tokenizer};

/// Streams `ids` through detokenizer and matcher the way a sequence does; returns the
/// output text and whether a stop ended it.
fn generate(tokenizer: &Tokenizer, ids: &[u32], stops: &[&str]) -> (String, bool) {
    let mut detokenizer = Detokenizer::new(tokenizer);
    let mut matcher = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
    let mut output = String::new();
    for &id in ids {
        let step = matcher.push(&detokenizer.push(id).unwrap());
        output += &step.released;
        if step.matched {
            return (output, true);
        }
    }
    let tail = detokenizer.finish().unwrap();
    let step = matcher.push(&tail);
    output += &step.released;
    if step.matched {
        return (output, true);
    }
    output += &matcher.finish();
    (output, false)
}

/// Asserts no single token's text contains `stop`: it can only appear across tokens.
fn assert_spans_tokens(tokenizer: &Tokenizer, ids: &[u32], stop: &str) {
    for &id in ids {
        let piece = tokenizer.decode_ids(&[id]).unwrap();
        assert!(
            !piece.contains(stop),
            "token {id} ({piece:?}) contains {stop:?}"
        );
    }
}

#[test]
fn a_stop_string_spanning_two_gpt2_tokens_ends_generation_and_is_excluded() {
    let tokenizer = gpt2_tokenizer();
    let ids = encode(&tokenizer, "The answer is 42. The next question");
    assert_spans_tokens(&tokenizer, &ids, "is 42");
    let (text, stopped) = generate(&tokenizer, &ids, &["is 42"]);
    assert!(stopped);
    assert_eq!(text, "The answer ");
}

#[test]
fn a_stop_string_spanning_a_split_emoji_is_found() {
    let tokenizer = gpt2_tokenizer();
    let ids = encode(&tokenizer, "Done 😀 bye");
    let (text, stopped) = generate(&tokenizer, &ids, &["😀 b"]);
    assert!(stopped);
    assert_eq!(text, "Done ");
}

#[test]
fn a_stop_string_that_never_completes_costs_no_text() {
    let tokenizer = gpt2_tokenizer();
    let ids = encode(&tokenizer, "The answer is 4 and then 2.");
    let (text, stopped) = generate(&tokenizer, &ids, &["is 42", "\n\n"]);
    assert!(!stopped);
    assert_eq!(text, "The answer is 4 and then 2.");
}
