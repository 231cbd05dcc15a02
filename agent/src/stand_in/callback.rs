//! Stand-in for `callback.rs`: POSTs each event from a background thread, a few bounded
//! retries, never blocking the caller.

use std::time::Duration;

pub struct StatusCallback {
    url: Option<String>,
}

impl StatusCallback {
    pub fn new(url: Option<String>) -> Self {
        StatusCallback { url }
    }

    pub fn send(&self, event: serde_json::Value) {
        let Some(url) = self.url.clone() else { return };
        std::thread::spawn(move || {
            let mut delay = Duration::from_millis(200);
            for _ in 0..4 {
                let sent = ureq::post(&url)
                    .timeout(Duration::from_secs(5))
                    .send_json(event.clone());
                if sent.is_ok() {
                    return;
                }
                std::thread::sleep(delay);
                delay *= 2;
            }
            tracing::warn!(%url, "status callback not delivered after retries");
        });
    }
}
