//! `kill -9` in the middle of a stream of writes: every put that returned before the kill
//! is present and parseable afterwards.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use gpu_agent::state::StateStore;
use serde::{Deserialize, Serialize};

use crate::common::child_test;

const DIR_ENV: &str = "GPU_AGENT_TEST_STATE_DIR";
const RUN_ENV: &str = "GPU_AGENT_TEST_STATE_RUN";
const CHILD: &str = "state_crash::put_loop_child";
/// Acknowledged puts to wait for before killing the writer.
const ACKS_BEFORE_KILL: usize = 60;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    sequence: u64,
    /// Large enough that a write spans several pages, so a torn write would show.
    payload: String,
}

#[test]
#[ignore = "helper process for every_acknowledged_put_survives_kill_9; started by that test"]
fn put_loop_child() {
    let (Ok(dir), Ok(run)) = (std::env::var(DIR_ENV), std::env::var(RUN_ENV)) else {
        println!("helper process: run by every_acknowledged_put_survives_kill_9, not on its own");
        return;
    };
    let (store, _) = StateStore::open(std::path::Path::new(&dir)).expect("child opens store");
    let stdout = std::io::stdout();
    // Bounded so a parent that died cannot leave this loop running for ever.
    for sequence in 0..100_000u64 {
        let id = format!("r{run}-{sequence}");
        let record = Record {
            id: id.clone(),
            sequence,
            payload: "x".repeat(3000 + (sequence as usize % 7) * 1000),
        };
        store.put("records", &id, &record).expect("put");
        // Rewriting one document over and over: the kill is likely to land mid-rewrite.
        store.put("latest", &run, &record).expect("put latest");
        let mut out = stdout.lock();
        writeln!(out, "ACK {id}").expect("stdout");
        out.flush().expect("stdout");
    }
}

#[test]
fn every_acknowledged_put_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_text = dir.path().to_string_lossy().into_owned();
    let mut acknowledged = Vec::new();
    for run in 0..3 {
        let run_text = run.to_string();
        let mut child = child_test(CHILD, &[(DIR_ENV, &dir_text), (RUN_ENV, &run_text)])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < ACKS_BEFORE_KILL {
            let line = lines
                .next()
                .expect("writer exited before acknowledging enough puts")
                .expect("read stdout");
            if let Some(id) = line.strip_prefix("ACK ") {
                acknowledged.push(id.to_owned());
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL the writer"); // std sends SIGKILL on Unix
                                                   // Acks already in the pipe were acknowledged before the kill: they count too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("ACK ") {
                acknowledged.push(id.to_owned());
            }
        }
        let status = child.wait().expect("reap writer");
        assert!(
            !status.success(),
            "the writer was killed, not finished: {status:?}"
        );

        let (store, quarantined) = StateStore::open(dir.path()).expect("reopen after kill -9");
        assert!(
            quarantined.is_empty(),
            "atomic renames leave nothing torn: {quarantined:?}"
        );
        let records: Vec<Record> = store.list("records").expect("every record parses");
        let stored: std::collections::HashSet<&str> =
            records.iter().map(|record| record.id.as_str()).collect();
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged but lost after kill -9: {lost:?}"
        );
        let last_ack = acknowledged.last().expect("acks");
        let latest: Option<Record> = store.get("latest", &run_text).expect("latest parses");
        let latest = latest.expect("latest of this run stored");
        let last_sequence: u64 = last_ack
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("ack carries its sequence");
        assert!(
            latest.sequence >= last_sequence,
            "latest regressed behind an ack"
        );
    }
}
