//! Prompt ids equal Hugging Face's for every reference text.

use references::{
    fixtures_dir, golden_cases, model_path, tokenization_cases, GoldenCase, TokenizationCase,
};
use runtime::checkpoint::Checkpoint;
use runtime::tokenizer::Tokenizer;
use serde::Deserialize;

fn tokenizer_of(model: &str) -> Tokenizer {
    let dir = Checkpoint::open(model_path(model)).expect("fixture model directory opens");
    Tokenizer::load(&dir).expect("fixture tokenizer loads")
}

fn assert_encodes(tokenizer: &Tokenizer, cases: &[(String, Vec<u32>)]) {
    assert!(!cases.is_empty());
    for (text, ids) in cases {
        let got = tokenizer.encode(text).expect("encodes");
        assert_eq!(&got, ids, "token ids of {text:?}");
    }
}

fn pairs(cases: &[TokenizationCase]) -> Vec<(String, Vec<u32>)> {
    cases
        .iter()
        .map(|c| (c.text.clone(), c.ids.clone()))
        .collect()
}

/// Each golden case's prompt with the ids Hugging Face gave it.
fn prompts(cases: &[GoldenCase]) -> Vec<(String, Vec<u32>)> {
    cases
        .iter()
        .map(|c| (c.prompt.clone(), c.prompt_ids.clone()))
        .collect()
}

#[test]
fn gpt2_vocab_and_merges_encode_like_hugging_face() {
    let tokenizer = tokenizer_of("gpt2-tiny");
    assert_encodes(&tokenizer, &pairs(&tokenization_cases("gpt2")));
    assert_encodes(&tokenizer, &prompts(&golden_cases("gpt2-tiny")));
}

#[test]
fn gpt2_tokenizer_json_encodes_like_vocab_and_merges() {
    let path = fixtures_dir().join("tokenizers/gpt2/tokenizer.json");
    let tokenizer = Tokenizer::from_json_file(&path).expect("tokenizer.json loads");
    assert_encodes(&tokenizer, &pairs(&tokenization_cases("gpt2")));
    assert_eq!(tokenizer.eos_token_id(), 50256);
}

#[test]
fn gpt2_eos_is_end_of_text() {
    assert_eq!(tokenizer_of("gpt2-tiny").eos_token_id(), 50256);
}

#[test]
fn t5_encodes_like_hugging_face_and_appends_eos() {
    let tokenizer = tokenizer_of("t5-tiny");
    assert_eq!(tokenizer.eos_token_id(), 1);
    assert_encodes(&tokenizer, &pairs(&tokenization_cases("t5")));
    let prompts = prompts(&golden_cases("t5-tiny"));
    assert_encodes(&tokenizer, &prompts);
    for (_, ids) in &prompts {
        assert_eq!(ids.last(), Some(&1), "T5 prompts end with </s>");
    }
}

#[derive(Deserialize)]
struct ReferenceEncodings {
    cases: Vec<ReferenceEncoding>,
}

#[derive(Deserialize)]
struct ReferenceEncoding {
    text: String,
    hf_tokenizer_json_ids: Vec<u32>,
    sentencepiece_ids_plus_eos: Vec<u32>,
}

/// The reference file's note: sentencepiece and tokenizer.json agree except on
/// `<extra_id_0>`, which Hugging Face treats as an added special token. We follow Hugging Face.
#[test]
fn t5_tokenizer_json_matches_the_reference_encodings() {
    let path = fixtures_dir().join("tokenizers/t5/reference_encodings.json");
    let reference: ReferenceEncodings =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("parses");
    let tokenizer = Tokenizer::from_json_file(&fixtures_dir().join("tokenizers/t5/tokenizer.json"))
        .expect("tokenizer.json loads");
    let mut differs_from_sentencepiece = 0;
    for case in &reference.cases {
        let got = tokenizer.encode(&case.text).expect("encodes");
        assert_eq!(
            got, case.hf_tokenizer_json_ids,
            "token ids of {:?}",
            case.text
        );
        if got != case.sentencepiece_ids_plus_eos {
            assert!(case.text.contains("<extra_id_0>"), "{:?}", case.text);
            differs_from_sentencepiece += 1;
        }
    }
    assert!(reference.cases.len() >= 5);
    assert!(differs_from_sentencepiece <= 1);
}

#[test]
fn decode_skips_special_tokens() {
    let t5 = tokenizer_of("t5-tiny");
    let ids = t5.encode("The house is wonderful.").expect("encodes");
    assert_eq!(t5.decode(&ids).expect("decodes"), "The house is wonderful.");

    let gpt2 = tokenizer_of("gpt2-tiny");
    let mut ids = gpt2.encode("Hello world").expect("encodes");
    ids.push(gpt2.eos_token_id());
    assert_eq!(gpt2.decode(&ids).expect("decodes"), "Hello world");
}

#[test]
fn t5_v1_0_fixture_encodes_its_prompts_like_hugging_face() {
    let tokenizer = tokenizer_of("t5-v1_0-tiny");
    assert_encodes(&tokenizer, &prompts(&golden_cases("t5-v1_0-tiny")));
}

/// `Tokenizer::encode_at_most` refuses long prompts from piece counts; that is sound only
/// if the pieces' counts add up to the whole text's count, which this checks for both
/// families on texts with single and repeated spaces, newlines, punctuation and digits.
#[test]
fn whitespace_pieces_count_exactly_what_the_whole_text_has() {
    use runtime::tokenizer::whitespace_pieces;
    let texts = [
        "a ".repeat(3000),
        "The quick brown fox, 12 jumps!  over   the lazy dog.\n\n".repeat(200),
        "naïve café  über\tstraße — ok?  ".repeat(300),
        "word".repeat(500) + " tail",
    ];
    for model in ["gpt2-tiny", "t5-tiny"] {
        let tokenizer = tokenizer_of(model);
        for text in &texts {
            let whole = tokenizer.count_without_specials(text).expect("encodes");
            for size in [1, 7, 64, 1000] {
                let pieces: usize = whitespace_pieces(text, size)
                    .map(|piece| tokenizer.count_without_specials(piece).expect("encodes"))
                    .sum();
                assert_eq!(pieces, whole, "{model}, pieces of {size} bytes");
            }
        }
    }
}

#[test]
fn encode_at_most_gives_the_ids_within_the_limit_and_stops_past_it() {
    use runtime::tokenizer::BoundedEncoding;
    let tokenizer = tokenizer_of("gpt2-tiny");
    let short = "hello world";
    assert_eq!(
        tokenizer.encode_at_most(short, 100).expect("encodes"),
        BoundedEncoding::Ids(tokenizer.encode(short).expect("encodes"))
    );
    let long = "a ".repeat(500_000);
    match tokenizer.encode_at_most(&long, 1024).expect("encodes") {
        BoundedEncoding::TooLong { at_least } => {
            assert!(at_least > 1024 && at_least < 20_000, "{at_least}")
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
}
