//! Stand-in for `systemd.rs`: sd-notify messages; no-ops outside systemd.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn notify_ready() {
    let _ = sd_notify::notify(&[NotifyState::Ready]);
}

pub fn notify_stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

pub fn notify_watchdog() {
    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
}

pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}
