//! Streaming equals non-streaming: however the text is split into deltas, the released
//! text plus the final flush is the text before the first stop to complete.

use proptest::prelude::*;
use runtime::text::StopMatcher;

/// The non-streaming answer: the shortest prefix of `text` that ends with a stop; the
/// output is that prefix minus the (longest such) stop. No stop: the whole text.
fn reference(text: &str, stops: &[String]) -> (String, bool) {
    let ends = text.char_indices().map(|(i, c)| i + c.len_utf8());
    for end in ends {
        let prefix = &text[..end];
        let longest = stops
            .iter()
            .filter(|s| !s.is_empty() && prefix.ends_with(s.as_str()))
            .map(|s| s.len())
            .max();
        if let Some(len) = longest {
            return (prefix[..end - len].to_string(), true);
        }
    }
    (text.to_string(), false)
}

fn streaming(deltas: &[String], stops: &[String]) -> (String, bool) {
    let mut matcher = StopMatcher::new(stops.to_vec());
    let mut output = String::new();
    for delta in deltas {
        let step = matcher.push(delta);
        output += &step.released;
        if step.matched {
            return (output, true);
        }
    }
    output += &matcher.finish();
    (output, false)
}

/// Splits `text` at the given character positions.
fn split_at_chars(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(chars.len());
    let mut start = 0;
    cuts.into_iter()
        .map(|end| {
            let piece: String = chars[start..end].iter().collect();
            start = end;
            piece
        })
        .collect()
}

// Texts and stops draw from a small alphabet with multi-byte characters, so that stops
// occur, overlap and nearly occur.
proptest! {
    #[test]
    fn streaming_release_plus_flush_equals_the_non_streaming_answer(
        text in "[ab é🙂]{0,40}",
        stops in prop::collection::vec("[ab é🙂]{0,4}", 0..4),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let deltas = split_at_chars(&text, &cuts);
        prop_assert_eq!(deltas.concat(), text.clone());
        prop_assert_eq!(streaming(&deltas, &stops), reference(&text, &stops));
    }

    #[test]
    fn released_text_never_contains_a_stop(
        text in "[ab é🙂]{0,40}",
        stop in "[ab é🙂]{1,4}",
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let (output, _) = streaming(&split_at_chars(&text, &cuts), std::slice::from_ref(&stop));
        prop_assert!(!output.contains(&stop));
    }
}
