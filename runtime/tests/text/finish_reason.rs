use runtime::text::FinishReason;

#[test]
fn finish_reasons_have_their_wire_names() {
    assert_eq!(FinishReason::Length.as_str(), "length");
    assert_eq!(FinishReason::StopSequence.as_str(), "stop_sequence");
    assert_eq!(FinishReason::Eos.as_str(), "eos");
    assert_eq!(FinishReason::Eos.to_string(), "eos");
}
