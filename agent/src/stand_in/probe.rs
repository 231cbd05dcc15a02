//! Stand-in for `probe.rs` (`gpu-agent status`): GET /readyz, exit 0 ready, 1 not ready,
//! 2 unreachable.

use std::time::Duration;

pub fn run(url: &str, json: bool) -> i32 {
    let readyz = format!("{}/readyz", url.trim_end_matches('/'));
    let (code, line) = match ureq::get(&readyz).timeout(Duration::from_secs(5)).call() {
        Ok(_) => (0, "ready".to_owned()),
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            (1, format!("not ready ({status}): {body}"))
        }
        Err(error) => (2, format!("unreachable: {error}")),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"url": url, "exitCode": code, "summary": line})
        );
    } else {
        println!("{line}");
    }
    code
}
