//! How kinds and ids map to names on disk. Any id can be stored: bytes outside a safe set
//! are percent-encoded, so an id can never climb out of its directory or collide with the
//! store's own temp files (which alone start with '.').

use super::error::StateError;

/// Name of the directory that receives files the store could not read.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Suffix of a stored document.
const DOCUMENT_SUFFIX: &str = ".json";

/// Longest encoded id, leaving room under the usual 255-byte name limit for the suffix
/// and the temp-file decoration.
const MAX_ENCODED_ID: usize = 200;

/// Accepts kinds chosen by the agent's own code ("deployments", "dock_status").
pub(crate) fn check_kind(kind: &str) -> Result<(), StateError> {
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind != QUARANTINE_DIR
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(StateError::InvalidKind {
            kind: kind.to_owned(),
        })
    }
}

/// The document file name for `id`.
pub(crate) fn document_name(id: &str) -> Result<String, StateError> {
    if id.is_empty() {
        return Err(StateError::InvalidId {
            id: String::new(),
            reason: "the id is empty",
        });
    }
    let mut encoded = String::with_capacity(id.len());
    for (position, byte) in id.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || byte == b'_'
            || byte == b'-'
            || (byte == b'.' && position > 0);
        if keep {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if encoded.len() > MAX_ENCODED_ID {
        return Err(StateError::InvalidId {
            id: id.to_owned(),
            reason: "the id is too long (at most 200 bytes once encoded)",
        });
    }
    encoded.push_str(DOCUMENT_SUFFIX);
    Ok(encoded)
}

/// A unique temp name beside `document`; unique across threads and processes.
pub(crate) fn temp_name(document: &str, sequence: u64) -> String {
    format!(".{document}.tmp.{}.{sequence}", std::process::id())
}

/// Whether a directory entry is a temp file left by an interrupted write.
pub(crate) fn is_temp(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether a directory entry is a stored document.
pub(crate) fn is_document(name: &str) -> bool {
    !is_temp(name) && name.ends_with(DOCUMENT_SUFFIX)
}

/// The id a document file name stands for; `None` when the name is not one the store
/// writes.
pub(crate) fn id_of(name: &str) -> Option<String> {
    let encoded = name.strip_suffix(DOCUMENT_SUFFIX)?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_keep_their_name() {
        assert_eq!(
            document_name("cm-abc123").ok().as_deref(),
            Some("cm-abc123.json")
        );
        assert_eq!(
            document_name("gpt2.v1").ok().as_deref(),
            Some("gpt2.v1.json")
        );
    }

    #[test]
    fn path_like_ids_cannot_leave_their_directory() {
        let dotdot = document_name("..").expect("encodable");
        assert_eq!(dotdot, "%2E..json");
        assert!(!dotdot.contains('/'));
        let slashes = document_name("../../etc/passwd").expect("encodable");
        assert!(!slashes.contains('/'));
        assert!(!is_temp(&slashes));
        assert!(is_document(&slashes));
    }

    #[test]
    fn encoded_names_decode_to_the_id() {
        for id in ["cm-abc123", "..", "a/b c", "modèle", ".hidden", "x%y"] {
            let name = document_name(id).expect("encodable");
            assert_eq!(id_of(&name).as_deref(), Some(id), "{name}");
        }
    }

    #[test]
    fn empty_and_overlong_ids_are_refused() {
        assert!(matches!(
            document_name(""),
            Err(StateError::InvalidId { .. })
        ));
        assert!(document_name(&"a".repeat(200)).is_ok());
        assert!(matches!(
            document_name(&"a".repeat(201)),
            Err(StateError::InvalidId { .. })
        ));
        assert!(matches!(
            document_name(&"/".repeat(67)),
            Err(StateError::InvalidId { .. })
        ));
    }

    #[test]
    fn kinds_are_plain_lowercase_names() {
        assert!(check_kind("deployments").is_ok());
        assert!(check_kind("dock_status").is_ok());
        for bad in [
            "",
            "quarantine",
            "Deployments",
            "a/b",
            "..",
            &"k".repeat(65),
        ] {
            assert!(check_kind(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn temp_files_are_told_apart_from_documents() {
        let temp = temp_name("cm-1.json", 7);
        assert!(is_temp(&temp));
        assert!(!is_document(&temp));
        assert!(is_document("cm-1.json"));
        assert!(!is_document("notes.txt"));
    }
}
