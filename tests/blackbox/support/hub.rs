//! A Hugging Face endpoint that accepts connections and never answers: a deploy of a
//! model fetched from it stays in FETCHING, which lets tests observe an in-progress
//! deploy (409, readiness, kill -9 mid-deploy) without a real download.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct HangingHub {
    pub url: String,
    /// Connections held open so the client waits forever.
    _held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl HangingHub {
    pub fn start() -> HangingHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hanging hub");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(stream);
            }
        });
        HangingHub { url, _held: held }
    }

    /// The environment an agent needs to fetch from this hub.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("HF_ENDPOINT", self.url.as_str())]
    }
}
