//! The result of one check on one host, as reported back to the coordinator and stored:
//! the verdict ([`Outcome`]) and what the check saw ([`Observation`]: what the host has,
//! and, when the check did not pass, what it wanted). How a check is run lives in the
//! runner; how results are printed lives in the CLI.
//!
//! On the wire the two travel side by side: [`Outcome`]s in the map every peer decodes,
//! [`Observation`]s in a second, optional map (see `crate::rpc::protocol`), so that
//! peers without observations still exchange results with peers that have them.

use serde::{Deserialize, Serialize};

/// What one check concluded on one host.
///
/// `Success(true)` means the check holds (after applying `"expect": false`, if any);
/// `Success(false)` means it does not; `Error` means it could not be decided (unreadable
/// file, timeout, refused, …) and carries a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The check ran and its condition held (`true`) or did not (`false`).
    Success(bool),
    /// The check could not run or could not decide; a one-line human-readable reason.
    Error(String),
}

impl Outcome {
    /// True only for `Success(true)`.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Success(true))
    }
}

/// Most facts one side of an [`Observation`] keeps; further ones are dropped.
pub const MAX_FACTS: usize = 16;
/// Longest fact name kept, in bytes.
pub const MAX_FACT_NAME_BYTES: usize = 64;

/// Named values, in the order the check type gives them (`mode=0644`, `owner=root`).
/// Encoded as a map from name to value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts(Vec<(String, String)>);

impl Facts {
    /// No facts.
    pub fn new() -> Facts {
        Facts(Vec::new())
    }

    /// These facts and `name = value`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Facts {
        self.0.push((name.to_string(), value.into()));
        self
    }

    /// True when there are no facts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The facts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Bytes of names and values together.
    fn size(&self) -> usize {
        self.0.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// At most [`MAX_FACTS`] facts, names cut to [`MAX_FACT_NAME_BYTES`], every text one
    /// line, and names and values together at most `budget` bytes (later values are cut,
    /// then dropped). Returns the bytes left of `budget`.
    fn bound(&mut self, budget: usize) -> usize {
        let mut left = budget;
        let mut kept = Vec::with_capacity(self.0.len().min(MAX_FACTS));
        for (name, value) in self.0.drain(..).take(MAX_FACTS) {
            let name = one_line(&name, MAX_FACT_NAME_BYTES);
            if name.len() >= left {
                break;
            }
            left -= name.len();
            let value = one_line(&value, left);
            left -= value.len();
            kept.push((name, value));
        }
        self.0 = kept;
        left
    }
}

impl Serialize for Facts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Facts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Facts, D::Error> {
        struct FactsVisitor;
        impl<'de> serde::de::Visitor<'de> for FactsVisitor {
            type Value = Facts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of fact names to texts")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Facts, M::Error> {
                // A peer's map is input from the network: keep what the bound keeps, and
                // skip (without storing) anything beyond it.
                let mut facts = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if facts.len() < MAX_FACTS {
                        facts.push((name, value));
                    }
                }
                Ok(Facts(facts))
            }
        }
        d.deserialize_map(FactsVisitor)
    }
}

/// What a check saw on the host (`found`) and, when it did not pass, what it wanted
/// (`expected`; with `"expect": false`, `negated` says it wanted those facts not to
/// hold). Both sides may be empty: an error before anything was seen has no `found`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// What the host has: the mode, the digest, the status code, the pids, …
    #[serde(default, skip_serializing_if = "Facts::is_empty")]
    pub found: Facts,
    /// What the check wanted; empty when it passed.
    #[serde(default, skip_serializing_if = "Facts::is_empty")]
    pub expected: Facts,
    /// The check wanted `expected` not to hold (`"expect": false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

impl Observation {
    /// Nothing observed and nothing expected.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty() && self.expected.is_empty()
    }

    /// The same observation with every text one line and at most `max_bytes` of names
    /// and values in all (the same cap as an error text): `found` first, then
    /// `expected` in what is left.
    pub fn bounded(mut self, max_bytes: usize) -> Observation {
        if self.found.size() + self.expected.size() <= max_bytes
            && self.found.0.len() <= MAX_FACTS
            && self.expected.0.len() <= MAX_FACTS
            && self.all_one_line()
        {
            return self;
        }
        // Give `expected` at least a third, so a long `found` cannot push it out.
        let expected_share = self.expected.size().min(max_bytes / 3);
        let left = self.found.bound(max_bytes - expected_share);
        self.expected.bound(left + expected_share);
        self
    }

    fn all_one_line(&self) -> bool {
        let clean = |s: &str| !s.chars().any(char::is_control);
        self.found
            .iter()
            .chain(self.expected.iter())
            .all(|(n, v)| clean(n) && clean(v) && n.len() <= MAX_FACT_NAME_BYTES)
    }
}

/// One check's result on one host: the verdict and what was observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Passed, failed, or could not decide.
    pub outcome: Outcome,
    /// What the check saw and wanted.
    pub observation: Observation,
}

impl CheckResult {
    /// The check ran: `holds` says whether its condition held; `found` is what it saw.
    pub fn holds(holds: bool, found: Facts) -> CheckResult {
        CheckResult {
            outcome: Outcome::Success(holds),
            observation: Observation {
                found,
                ..Observation::default()
            },
        }
    }

    /// The check could not decide, for the one-line `reason`.
    pub fn error(reason: impl Into<String>) -> CheckResult {
        CheckResult::from(Outcome::Error(reason.into()))
    }

    /// The same result with `found` as what was seen (for an error after something was
    /// seen).
    pub fn found(mut self, found: Facts) -> CheckResult {
        self.observation.found = found;
        self
    }

    /// The same result with `expected` as what the check wants, unless it already says.
    pub fn expecting(mut self, expected: Facts) -> CheckResult {
        if self.observation.expected.is_empty() {
            self.observation.expected = expected;
        }
        self
    }
}

impl From<Outcome> for CheckResult {
    fn from(outcome: Outcome) -> CheckResult {
        CheckResult {
            outcome,
            observation: Observation::default(),
        }
    }
}

/// In tests, a result compares equal to the outcome it carries.
#[cfg(test)]
impl PartialEq<Outcome> for CheckResult {
    fn eq(&self, other: &Outcome) -> bool {
        self.outcome == *other
    }
}

/// `text` on one line (control characters become spaces) and at most `max_bytes` long,
/// cut at a character boundary with `…` appended when it was longer.
pub fn one_line(text: &str, max_bytes: usize) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > max_bytes {
        let ellipsis = '…';
        let mut cut = max_bytes.saturating_sub(ellipsis.len_utf8());
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        if max_bytes >= ellipsis.len_utf8() {
            line.push(ellipsis);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, &str)]) -> Facts {
        pairs
            .iter()
            .fold(Facts::new(), |f, (n, v)| f.with(n, v.to_string()))
    }

    #[test]
    fn small_observations_are_kept_as_they_are() {
        let o = Observation {
            found: facts(&[("mode", "0644"), ("owner", "root")]),
            expected: facts(&[("mode", "0600")]),
            negated: false,
        };
        assert_eq!(o.clone().bounded(1024), o);
    }

    #[test]
    fn observations_are_bounded_like_error_texts() {
        let long = "x\ny".repeat(2000);
        let o = Observation {
            found: facts(&[("stdout", &long), ("exit_status", "1")]),
            expected: facts(&[("exit_status", "0"), ("stdout_contains", &long)]),
            negated: false,
        }
        .bounded(256);
        let total: usize = o.found.size() + o.expected.size();
        assert!(total <= 256, "{total}: {o:?}");
        assert!(o.all_one_line(), "{o:?}");
        // The long found value is cut, and expected keeps its first fact.
        assert!(o.found.get("stdout").is_some_and(|v| v.ends_with('…')));
        assert_eq!(o.expected.get("exit_status"), Some("0"));
        // Too many facts: the first MAX_FACTS stay.
        let many = (0..40).fold(Facts::new(), |f, i| f.with(&format!("k{i}"), "v"));
        let o = Observation {
            found: many,
            ..Observation::default()
        }
        .bounded(4096);
        assert_eq!(o.found.iter().count(), MAX_FACTS);
        assert_eq!(o.found.get("k0"), Some("v"));
    }

    #[test]
    fn one_line_caps_at_a_character_boundary() {
        assert_eq!(one_line("a\nb\tc", 100), "a b c");
        let capped = one_line(&"é".repeat(100), 10);
        assert!(capped.len() <= 10 && capped.ends_with('…'), "{capped}");
        assert_eq!(one_line("abc", 0), "");
    }
}
