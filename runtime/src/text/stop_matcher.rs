//! Stop strings over streamed text.
//!
//! Text arrives in deltas; a stop string may span several. The matcher releases text only
//! once it is certain no stop can start inside it: it holds back the longest tail of the
//! pending text that is a proper prefix of some stop string. A match is the occurrence that
//! completes first (smallest end offset; on a tie the one starting earlier), which is where
//! generation stops; the stop text and everything after it are dropped.

/// The outcome of one delta.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopStep {
    /// Text now certain to be part of the output.
    pub released: String,
    /// A stop string completed: generation should end with `FinishReason::StopSequence`.
    pub matched: bool,
}

#[derive(Debug, Clone)]
pub struct StopMatcher {
    /// Non-empty stop strings (an empty one would match before any text).
    stops: Vec<String>,
    /// Received but not yet released.
    pending: String,
    matched: bool,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
            matched: false,
        }
    }

    /// Adds a delta. After a match every later call releases nothing and reports the match.
    pub fn push(&mut self, delta: &str) -> StopStep {
        if self.matched {
            return StopStep {
                released: String::new(),
                matched: true,
            };
        }
        self.pending.push_str(delta);
        if let Some(start) = self.first_completed_stop() {
            self.pending.truncate(start);
            self.matched = true;
            return StopStep {
                released: std::mem::take(&mut self.pending),
                matched: true,
            };
        }
        let held = self.longest_tail_that_may_start_a_stop();
        let rest = self.pending.split_off(self.pending.len() - held);
        StopStep {
            released: std::mem::replace(&mut self.pending, rest),
            matched: false,
        }
    }

    /// Releases held-back text when generation ends for another reason (length, EOS).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Start offset of the stop occurrence in `pending` that ends first.
    fn first_completed_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|stop| {
                let start = self.pending.find(stop.as_str())?;
                Some((start + stop.len(), start))
            })
            .min()
            .map(|(_, start)| start)
    }

    /// Byte length of the longest tail of `pending` equal to a proper prefix of a stop.
    /// Prefixes are cut at character boundaries of the stop, so the tail starts on one too.
    fn longest_tail_that_may_start_a_stop(&self) -> usize {
        self.stops
            .iter()
            .flat_map(|stop| {
                stop.char_indices()
                    .map(|(end, _)| end)
                    .skip(1)
                    .filter(|&end| self.pending.ends_with(&stop[..end]))
            })
            .max()
            .unwrap_or(0)
    }
}
