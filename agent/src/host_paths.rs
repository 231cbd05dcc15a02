//! Host paths kept out of what callers see. Failure messages often carry a path (a model
//! file that could not be read, the Hugging Face cache, the NVML library); the log keeps
//! the full message, callers get it with each known host path replaced by a placeholder
//! (docs/api.md § Common rules).

use std::path::Path;

/// The known host paths and their placeholders, longest first so a path under another
/// is replaced whole.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostPaths {
    known: Vec<(String, &'static str)>,
}

impl HostPaths {
    pub fn new<'a>(
        model_roots: impl IntoIterator<Item = &'a Path>,
        hf_cache: &Path,
        state_dir: &Path,
        nvml_library: &Path,
    ) -> Self {
        let mut known = Vec::new();
        for root in model_roots {
            push_path(&mut known, root, "<model root>");
            if let Ok(real) = root.canonicalize() {
                push_path(&mut known, &real, "<model root>");
            }
        }
        push_path(&mut known, hf_cache, "<hugging face cache>");
        push_path(&mut known, state_dir, "<state dir>");
        // A bare library name ("libnvidia-ml.so.1") is searched for, not a host path.
        if nvml_library.components().count() > 1 {
            push_path(&mut known, nvml_library, "<nvml library>");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
            push_path(&mut known, Path::new(&home), "~");
        }
        known.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        HostPaths { known }
    }

    /// `text` with every known host path replaced by its placeholder.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for (path, placeholder) in &self.known {
            if redacted.contains(path.as_str()) {
                redacted = redacted.replace(path.as_str(), placeholder);
            }
        }
        redacted
    }
}

fn push_path(known: &mut Vec<(String, &'static str)>, path: &Path, placeholder: &'static str) {
    let text = path.display().to_string();
    let text = text.trim_end_matches('/');
    // "/" (or an empty path) would replace every slash.
    if text.len() > 1 {
        known.push((text.to_owned(), placeholder));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_become_placeholders_longest_first() {
        let paths = HostPaths::new(
            [Path::new("/srv/models")],
            Path::new("/srv/models/hf"),
            Path::new("/var/lib/gpu-agent"),
            Path::new("libnvidia-ml.so.1"),
        );
        assert_eq!(
            paths.redact("cannot read /srv/models/x/config.json or /srv/models/hf/y"),
            "cannot read <model root>/x/config.json or <hugging face cache>/y"
        );
        assert_eq!(
            paths.redact("libnvidia-ml.so.1 missing"),
            "libnvidia-ml.so.1 missing"
        );
    }
}
