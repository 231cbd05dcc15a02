//! The durable store through real files in a temp directory.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use gpu_agent::state::{StateError, StateStore, QUARANTINE_DIR};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Deployment {
    id: String,
    phase: String,
}

fn deployment(id: &str, phase: &str) -> Deployment {
    Deployment {
        id: id.to_owned(),
        phase: phase.to_owned(),
    }
}

fn open(dir: &Path) -> StateStore {
    let (store, quarantined) = StateStore::open(dir).expect("store opens");
    assert!(quarantined.is_empty(), "{quarantined:?}");
    store
}

#[test]
fn put_list_get_and_delete_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store
        .put("deployments", "cm-b", &deployment("cm-b", "READY"))
        .expect("put");
    store
        .put("deployments", "cm-a", &deployment("cm-a", "PENDING"))
        .expect("put");
    store
        .put("deployments", "cm-a", &deployment("cm-a", "LOADING"))
        .expect("replace");

    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(
        listed,
        vec![deployment("cm-a", "LOADING"), deployment("cm-b", "READY")]
    );
    let got: Option<Deployment> = store.get("deployments", "cm-b").expect("get");
    assert_eq!(got, Some(deployment("cm-b", "READY")));

    store.delete("deployments", "cm-a").expect("delete");
    store
        .delete("deployments", "cm-a")
        .expect("deleting again is not an error");
    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(listed, vec![deployment("cm-b", "READY")]);
    assert_eq!(
        store.get::<Deployment>("deployments", "cm-a").expect("get"),
        None
    );
    assert!(store
        .list::<Deployment>("never_written")
        .expect("list")
        .is_empty());
}

#[test]
fn documents_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        store
            .put("deployments", "a/../b", &deployment("a/../b", "READY"))
            .expect("put");
        store
            .put("dock_status", "job-1", &deployment("job-1", "SUCCESS"))
            .expect("put");
    }
    let store = open(dir.path());
    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(listed, vec![deployment("a/../b", "READY")]);
    let jobs: Vec<Deployment> = store.list("dock_status").expect("list");
    assert_eq!(jobs, vec![deployment("job-1", "SUCCESS")]);
}

#[test]
fn corrupt_and_foreign_files_are_quarantined_and_reported_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        store
            .put("deployments", "good", &deployment("good", "READY"))
            .expect("put");
    }
    let kind_dir = dir.path().join("deployments");
    fs::write(kind_dir.join("torn.json"), b"{\"id\": \"torn\", \"pha").expect("write");
    fs::write(kind_dir.join("empty.json"), b"").expect("write");
    fs::write(kind_dir.join("notes.txt"), b"operator notes").expect("write");

    let (store, quarantined) = StateStore::open(dir.path()).expect("store opens");
    let mut names: Vec<_> = quarantined
        .iter()
        .map(|file| {
            file.original
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            Some("empty.json".into()),
            Some("notes.txt".into()),
            Some("torn.json".into())
        ]
    );
    for file in &quarantined {
        assert!(file
            .moved_to
            .starts_with(dir.path().join(QUARANTINE_DIR).join("deployments")));
        assert!(
            file.moved_to.is_file(),
            "kept for inspection: {}",
            file.moved_to.display()
        );
        assert!(!file.original.exists());
        assert!(!file.reason.is_empty());
    }
    let torn = quarantined.iter().find(|f| f.id.as_deref() == Some("torn"));
    assert!(torn.is_some_and(|f| f.reason.contains("not valid JSON")));
    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(listed, vec![deployment("good", "READY")]);
}

#[test]
fn a_second_corrupt_file_of_the_same_name_does_not_overwrite_the_first_in_quarantine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kind_dir = dir.path().join("deployments");
    fs::create_dir_all(&kind_dir).expect("mkdir");
    fs::write(kind_dir.join("x.json"), b"first").expect("write");
    let (store, first) = StateStore::open(dir.path()).expect("open");
    drop(store);
    fs::write(kind_dir.join("x.json"), b"second").expect("write");
    let (_store, second) = StateStore::open(dir.path()).expect("open");
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first[0].moved_to, second[0].moved_to);
    assert_eq!(fs::read(&first[0].moved_to).expect("read"), b"first");
    assert_eq!(fs::read(&second[0].moved_to).expect("read"), b"second");
}

#[test]
fn restore_quarantines_valid_json_of_the_wrong_shape_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    store
        .put("deployments", "good", &deployment("good", "READY"))
        .expect("put");
    store
        .put("deployments", "old", &serde_json::json!({"legacy": true}))
        .expect("put");

    let strict = store.list::<Deployment>("deployments");
    assert!(
        matches!(strict, Err(StateError::Decode { ref path, .. }) if path.ends_with("old.json"))
    );

    let (restored, quarantined) = store.restore::<Deployment>("deployments").expect("restore");
    assert_eq!(restored, vec![deployment("good", "READY")]);
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].id.as_deref(), Some("old"));
    assert!(quarantined[0].moved_to.is_file());
}

#[test]
fn temp_files_left_by_a_crash_are_removed_and_the_old_document_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        store
            .put("deployments", "cm-1", &deployment("cm-1", "READY"))
            .expect("put");
    }
    // What a crash between write and rename leaves: a half-written temp file.
    let stray = dir.path().join("deployments").join(".cm-1.json.tmp.4242.0");
    fs::write(&stray, b"{\"id\": \"cm-1\", \"ph").expect("write");

    let store = open(dir.path());
    assert!(!stray.exists());
    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(listed, vec![deployment("cm-1", "READY")]);
}

#[test]
fn concurrent_puts_from_many_threads_all_land_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for round in 0..25 {
                    let id = format!("t{thread}-{round}");
                    store
                        .put("deployments", &id, &deployment(&id, "PENDING"))
                        .expect("put");
                    // Every thread also rewrites one shared id: each write must land whole.
                    store
                        .put("deployments", "shared", &deployment("shared", &id))
                        .expect("put shared");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
    let listed: Vec<Deployment> = store.list("deployments").expect("list");
    assert_eq!(listed.len(), 8 * 25 + 1);
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("deployments"))
        .expect("read dir")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = open(dir.path());
    let second = StateStore::open(dir.path());
    assert!(matches!(second, Err(StateError::Locked { .. })));
}

#[test]
fn kinds_that_could_escape_or_collide_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    for kind in ["../etc", QUARANTINE_DIR, "", "Upper"] {
        let result = store.put(kind, "x", &deployment("x", "READY"));
        assert!(
            matches!(result, Err(StateError::InvalidKind { .. })),
            "{kind:?}"
        );
    }
    let result = store.put("deployments", "", &deployment("", "READY"));
    assert!(matches!(result, Err(StateError::InvalidId { .. })));
}
