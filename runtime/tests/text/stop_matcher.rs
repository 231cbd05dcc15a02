use runtime::text::{StopMatcher, StopStep};

fn matcher(stops: &[&str]) -> StopMatcher {
    StopMatcher::new(stops.iter().map(|s| s.to_string()).collect())
}

fn step(released: &str, matched: bool) -> StopStep {
    StopStep {
        released: released.to_string(),
        matched,
    }
}

#[test]
fn text_that_may_start_a_stop_is_held_back_then_released_when_it_does_not() {
    let mut stops = matcher(&["Hello world"]);
    assert_eq!(stops.push("Say Hel"), step("Say ", false));
    assert_eq!(stops.push("lo w"), step("", false));
    assert_eq!(stops.push("ide"), step("Hello wide", false));
}

#[test]
fn a_stop_split_across_deltas_is_found_and_excluded_with_what_follows() {
    let mut stops = matcher(&["###"]);
    assert_eq!(stops.push("answer #"), step("answer ", false));
    assert_eq!(stops.push("#"), step("", false));
    assert_eq!(stops.push("# and more"), step("", true));
}

#[test]
fn the_stop_that_completes_first_wins() {
    // "bc" completes before "abcd" does, so generation stops there.
    let mut stops = matcher(&["abcd", "bc"]);
    assert_eq!(stops.push("xabcd"), step("xa", true));
    // Completing at the same place, the one starting earlier wins.
    let mut stops = matcher(&["cd", "bcd"]);
    assert_eq!(stops.push("abcde"), step("a", true));
    // Among disjoint stops, the earlier in the text wins whatever the list order.
    let mut stops = matcher(&["world", "lo w"]);
    assert_eq!(stops.push("Hello world"), step("Hel", true));
}

#[test]
fn after_a_match_nothing_more_is_released() {
    let mut stops = matcher(&["."]);
    assert_eq!(stops.push("One. Two"), step("One", true));
    assert_eq!(stops.push(" three"), step("", true));
    assert_eq!(stops.finish(), "");
}

#[test]
fn finish_flushes_the_held_back_tail() {
    let mut stops = matcher(&["</answer>"]);
    assert_eq!(stops.push("42 </ans"), step("42 ", false));
    assert_eq!(stops.finish(), "</ans");
    assert_eq!(stops.finish(), "");
}

#[test]
fn no_stops_pass_text_straight_through() {
    for mut stops in [matcher(&[]), matcher(&[""])] {
        assert_eq!(
            stops.push("anything at all"),
            step("anything at all", false)
        );
        assert_eq!(stops.finish(), "");
    }
}

#[test]
fn multi_byte_stops_hold_back_whole_characters() {
    let mut stops = matcher(&["🙂!"]);
    assert_eq!(stops.push("héllo 🙂"), step("héllo ", false));
    assert_eq!(stops.push("?"), step("🙂?", false));
    assert_eq!(stops.push("中🙂"), step("中", false));
    assert_eq!(stops.push("!"), step("", true));
}
