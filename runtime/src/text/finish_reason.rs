/// Why a generation ended, as the wire formats spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// `maxTokens` new tokens were produced (or the context was full).
    Length,
    /// A stop string appeared in the text; it is not part of the output.
    StopSequence,
    /// The model produced its end-of-sequence token.
    Eos,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::StopSequence => "stop_sequence",
            FinishReason::Eos => "eos",
        }
    }
}

impl std::fmt::Display for FinishReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
