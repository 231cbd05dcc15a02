//! Range checks on `config.json` fields, so a bad value is reported by name before any tensor
//! arithmetic could divide by it.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::load_error::LoadError;

pub(crate) struct ConfigCheck {
    path: PathBuf,
}

impl ConfigCheck {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    pub(crate) fn invalid(
        &self,
        field: &'static str,
        expected: String,
        found: impl Display,
    ) -> LoadError {
        LoadError::InvalidConfig {
            path: self.path.clone(),
            field,
            expected,
            found: found.to_string(),
        }
    }
}

pub(crate) fn positive(
    check: &ConfigCheck,
    field: &'static str,
    value: usize,
) -> Result<(), LoadError> {
    if value == 0 {
        return Err(check.invalid(field, "must be > 0".to_string(), value));
    }
    Ok(())
}
