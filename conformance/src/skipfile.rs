//! The implementer's skip file: cases they skip (ID or glob, with a reason) and which of their
//! error codes stand for which spec codes. JSON; see `conformance/examples/skip.json`.
//!
//! An entry that matches no case is an error, so the file cannot go stale silently.

use std::collections::BTreeMap;
use std::path::Path;

use kith_proto::ErrorCode;
use serde::{Deserialize, Serialize};

/// A parsed skip file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SkipFile {
    /// The implementation's name and version, shown in reports.
    #[serde(default)]
    pub implementation: Option<String>,
    /// Skipped cases.
    #[serde(default)]
    pub skip: Vec<SkipEntry>,
    /// The implementation's own error code -> the spec code it means.
    #[serde(default)]
    pub error_map: BTreeMap<String, String>,
}

/// One skipped case or glob of cases.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SkipEntry {
    /// A case ID or glob (`PRUNE-*`).
    pub case: String,
    /// Why it is skipped.
    pub reason: String,
}

/// Why a skip file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkipFileError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An entry is invalid.
    #[error("skip file: {0}")]
    Invalid(String),
}

impl SkipFile {
    /// Reads and checks a skip file.
    pub fn load(path: &Path) -> Result<Self, SkipFileError> {
        let read = |message: String| SkipFileError::Read { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let file: SkipFile = serde_json::from_str(&text).map_err(|e| read(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    /// Checks reasons and the error map's spec codes.
    pub fn check(&self) -> Result<(), SkipFileError> {
        for e in &self.skip {
            if e.reason.trim().is_empty() {
                return Err(SkipFileError::Invalid(format!("entry {:?} has no reason", e.case)));
            }
            globset::Glob::new(&e.case).map_err(|err| SkipFileError::Invalid(format!("{:?}: {err}", e.case)))?;
        }
        for (theirs, spec) in &self.error_map {
            if ErrorCode::from_wire(spec).is_none() {
                return Err(SkipFileError::Invalid(format!(
                    "error_map maps {theirs:?} to {spec:?}, which is not a spec error code"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/skip.json");
        let f = SkipFile::load(&path).expect("example skip file");
        assert!(!f.skip.is_empty());
        assert!(!f.error_map.is_empty());
    }

    #[test]
    fn unknown_spec_code_is_refused() {
        let f: SkipFile = serde_json::from_str(r#"{"error_map":{"E42":"no_such_code"}}"#).expect("json");
        assert!(f.check().is_err());
        let f: SkipFile = serde_json::from_str(r#"{"skip":[{"case":"HS-*","reason":" "}]}"#).expect("json");
        assert!(f.check().is_err());
    }
}
