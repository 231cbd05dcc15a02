//! Prefetches started through `POST /v1/store/models/{modelId}/pull` or `gpu-agent pull`:
//! the last outcome per modelId, for `GET /v1/store/models/{modelId}`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum PullState {
    Fetching,
    Ready,
    Failed { code: String, message: String },
}

#[derive(Default)]
pub struct Pulls {
    states: Mutex<HashMap<String, PullState>>,
}

impl Pulls {
    /// Records a new pull; false when one is already fetching.
    pub(crate) fn begin(&self, model_id: &str) -> bool {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if states.get(model_id) == Some(&PullState::Fetching) {
            return false;
        }
        states.insert(model_id.to_owned(), PullState::Fetching);
        true
    }

    pub fn finish(&self, model_id: &str, state: PullState) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(model_id.to_owned(), state);
    }

    pub fn get(&self, model_id: &str) -> Option<PullState> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(model_id)
            .cloned()
    }

    pub(crate) fn forget(&self, model_id: &str) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(model_id);
    }
}
