//! The environment tag every certificate carries: nodes only talk to nodes of the same env.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An environment tag such as `prod` or `staging`: 1 to 63 characters from `[a-z0-9-]`.
///
/// Nodes only talk to nodes of the same env; the tag is baked into every certificate.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Env(String);

impl Env {
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Env {
    /// The `dev` env, used when none is given in derived mode.
    fn default() -> Env {
        Env("dev".to_string())
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Env({:?})", self.0)
    }
}

/// Why a string is not an env tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid env {0:?}: use 1 to 63 characters from lowercase letters a-z, digits 0-9 and '-'")]
pub struct ParseEnvError(pub String);

impl FromStr for Env {
    type Err = ParseEnvError;

    fn from_str(s: &str) -> Result<Env, ParseEnvError> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        if s.is_empty() || s.len() > 63 || !s.bytes().all(allowed) {
            return Err(ParseEnvError(s.to_string()));
        }
        Ok(Env(s.to_string()))
    }
}

impl TryFrom<String> for Env {
    type Error = ParseEnvError;

    fn try_from(s: String) -> Result<Env, ParseEnvError> {
        s.parse()
    }
}

impl From<Env> for String {
    fn from(env: Env) -> String {
        env.0
    }
}
