//! The deny list (`--deny FILE`): certificates a node refuses although a CA it trusts
//! signed them, named by their SHA-256 fingerprint or, for operators, by name.
//!
//! # File format
//!
//! One entry per line; `#` starts a comment; blank lines are skipped.
//!
//! - a certificate fingerprint: 64 hex digits, in either case, with or without `:`
//!   between bytes (as `openssl x509 -fingerprint -sha256` prints it), optionally after
//!   `sha256:`;
//! - an operator name, optionally after `operator:`.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use crate::rpc::identity::IdentityError;
use crate::rpc::identity::files::read_bounded;
use crate::rpc::identity::uri::{Holder, validate_operator_name};

/// Largest deny file read.
pub const MAX_DENY_FILE_BYTES: u64 = 1024 * 1024;

/// One deny-list entry a certificate matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DenyEntry {
    /// A certificate's SHA-256 fingerprint, lowercase hex.
    Fingerprint(String),
    /// An operator name.
    Operator(String),
}

impl fmt::Display for DenyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyEntry::Fingerprint(hex) => write!(f, "certificate sha256 {hex}"),
            DenyEntry::Operator(name) => write!(f, "operator {name:?}"),
        }
    }
}

/// The certificates a node refuses. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenyList {
    fingerprints: HashSet<String>,
    operators: HashSet<String>,
}

impl DenyList {
    /// Reads a deny file (see the module doc).
    pub fn load(path: &Path) -> Result<DenyList, IdentityError> {
        let bytes = read_bounded(path, MAX_DENY_FILE_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|e| IdentityError::BadDenyFile {
            path: path.to_path_buf(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            reason: "the file is not UTF-8 text".to_string(),
        })?;
        DenyList::parse(&text, path)
    }

    /// Parses the text of a deny file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<DenyList, IdentityError> {
        let mut list = DenyList::default();
        for (index, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            match parse_entry(entry) {
                Ok(DenyEntry::Fingerprint(hex)) => {
                    list.fingerprints.insert(hex);
                }
                Ok(DenyEntry::Operator(name)) => {
                    list.operators.insert(name);
                }
                Err(reason) => {
                    return Err(IdentityError::BadDenyFile {
                        path: path.to_path_buf(),
                        line: index + 1,
                        reason,
                    });
                }
            }
        }
        Ok(list)
    }

    /// The entry that denies a certificate with this fingerprint held by `holder`, if any.
    pub fn denies(&self, leaf_fingerprint: &str, holder: &Holder) -> Option<DenyEntry> {
        if self.fingerprints.contains(leaf_fingerprint) {
            return Some(DenyEntry::Fingerprint(leaf_fingerprint.to_string()));
        }
        match holder {
            Holder::Operator(name) if self.operators.contains(name) => {
                Some(DenyEntry::Operator(name.clone()))
            }
            _ => None,
        }
    }

    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.fingerprints.len() + self.operators.len()
    }

    /// Whether the list denies nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One entry of a deny file, or why it is none.
fn parse_entry(entry: &str) -> Result<DenyEntry, String> {
    if let Some(name) = entry.strip_prefix("operator:") {
        let name = name.trim();
        validate_operator_name(name).map_err(|e| e.to_string())?;
        return Ok(DenyEntry::Operator(name.to_string()));
    }
    let hex_part = match entry.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => entry[7..].trim(),
        _ => entry,
    };
    let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
    if digits.len() == 64 && digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(DenyEntry::Fingerprint(digits.to_ascii_lowercase()));
    }
    if validate_operator_name(entry).is_ok() {
        return Ok(DenyEntry::Operator(entry.to_string()));
    }
    Err(format!(
        "{entry:?} is neither a certificate fingerprint (64 hex digits) nor an operator name"
    ))
}
