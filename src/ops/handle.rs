//! Operation handles: the short names (`gxm12-hkpw`) a coordinator gives the operations it
//! runs, so that `werify ctl get HANDLE` can be sent to any node and forwarded to the one
//! that holds the results.
//!
//! # Format
//!
//! `<3 letters><counter>-<4-letter node tag>`, all letters from the original tool's 23-letter alphabet
//! `abcdefghjkmnpqrstuvwxyz` (no `i`, `l`, `o`, so handles survive being read aloud or
//! copied by hand):
//!
//! - the 3 letters are random, as in the original tool (`gxm1`), so consecutive handles look distinct;
//! - the counter is decimal without leading zeros; the store persists it so a handle is never
//!   reused after a restart (see [`crate::ops::store::Store::next_counter`]);
//! - the node tag is derived from the coordinator's [`NodeId`] by [`node_tag`], so any node
//!   can tell which member to forward a `get` to.
//!
//! This module only names operations; where results live is `store`, and how a tag is
//! resolved to an address is the membership table's business. Tags have 23⁴ = 279 841
//! values, so in a large mesh two nodes can share one: forwarding must be ready to try every
//! member whose tag matches.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::NodeId;

/// The letters handles are made of: the original tool's alphabet, without `i`, `l` and `o`.
pub const HANDLE_ALPHABET: &[u8; 23] = b"abcdefghjkmnpqrstuvwxyz";

/// How many random letters open a handle.
const PREFIX_LETTERS: usize = 3;

/// How many letters the node tag has.
const TAG_LETTERS: usize = 4;

/// Domain separation for the tag hash, so the tag is not simply a prefix of the id.
const TAG_DOMAIN: &[u8] = b"werify/handle-node-tag/v1";

/// The longest possible handle: 3 letters, 20 digits (`u64::MAX`), `-`, 4 letters.
const MAX_HANDLE_LEN: usize = PREFIX_LETTERS + 20 + 1 + TAG_LETTERS;

/// The name of one operation, unique across coordinator restarts, naming its coordinator.
///
/// Build one with [`Handle::new`] or parse one with [`str::parse`]; both guarantee the
/// format described in the [module docs](self). Serialized as its text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    /// The handle for the `counter`-th operation of the node `coordinator`.
    ///
    /// `letters_rng` picks the three leading letters (pass `rand::random()`); it is reduced
    /// modulo 23³, so any value works. The counter must come from
    /// [`Store::next_counter`](crate::ops::store::Store::next_counter) so that it never repeats.
    pub fn new(letters_rng: u64, counter: u64, coordinator: NodeId) -> Handle {
        let mut text = String::with_capacity(MAX_HANDLE_LEN);
        push_letters(&mut text, letters_rng, PREFIX_LETTERS);
        text.push_str(&counter.to_string());
        text.push('-');
        text.push_str(&node_tag(&coordinator));
        Handle(text)
    }

    /// The 4-letter tag of the coordinating node (see [`node_tag`]).
    pub fn node_tag(&self) -> &str {
        // The constructor and the parser both guarantee `-` followed by the ASCII tag.
        self.0
            .rsplit_once('-')
            .map(|(_, tag)| tag)
            .unwrap_or_default()
    }

    /// The per-coordinator counter embedded in the handle.
    pub fn counter(&self) -> u64 {
        self.0
            .get(PREFIX_LETTERS..)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(digits, _)| digits.parse().ok())
            .unwrap_or_default()
    }

    /// Whether this handle was issued by the node with this id (by tag; see the
    /// [module docs](self) on tag collisions).
    pub fn is_from(&self, id: &NodeId) -> bool {
        self.node_tag() == node_tag(id)
    }

    /// The handle as text, e.g. `gxm12-hkpw`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 4-letter tag a node puts at the end of the handles it issues.
///
/// Deterministic: the same id always gives the same tag, on every node and every version
/// using `TAG_DOMAIN` v1. It is a hash of the id, so ids that share a prefix still get
/// unrelated tags.
pub fn node_tag(id: &NodeId) -> String {
    let digest = Sha256::new()
        .chain_update(TAG_DOMAIN)
        .chain_update(id.0)
        .finalize();
    let mut first8 = [0u8; 8];
    for (dst, src) in first8.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    let mut tag = String::with_capacity(TAG_LETTERS);
    push_letters(&mut tag, u64::from_le_bytes(first8), TAG_LETTERS);
    tag
}

/// Appends `count` alphabet letters taken from `value` in base 23, least significant first.
/// The modulo bias from 2⁶⁴ is below 10⁻¹³, far below anything that matters here.
fn push_letters(out: &mut String, mut value: u64, count: usize) {
    let base = HANDLE_ALPHABET.len() as u64;
    for _ in 0..count {
        // `value % base` is below 23, so the index is always in range.
        let letter = HANDLE_ALPHABET
            .get((value % base) as usize)
            .copied()
            .unwrap_or(b'a');
        out.push(char::from(letter));
        value /= base;
    }
}

fn is_handle_letter(b: u8) -> bool {
    HANDLE_ALPHABET.contains(&b)
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

impl From<Handle> for String {
    fn from(handle: Handle) -> String {
        handle.0
    }
}

impl TryFrom<String> for Handle {
    type Error = ParseHandleError;

    fn try_from(text: String) -> Result<Handle, ParseHandleError> {
        text.parse()
    }
}

/// Why a string is not an operation handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid operation handle {text:?}: {reason}; a handle looks like gxm12-hkpw \
     (3 letters, a number, '-', 4 letters; letters from abcdefghjkmnpqrstuvwxyz)"
)]
pub struct ParseHandleError {
    /// The rejected text, cut to a sane length.
    pub text: String,
    /// What exactly was wrong.
    pub reason: &'static str,
}

impl FromStr for Handle {
    type Err = ParseHandleError;

    fn from_str(s: &str) -> Result<Handle, ParseHandleError> {
        let fail = |reason| ParseHandleError {
            // Bad input can be huge; quoting all of it back helps no one.
            text: s.chars().take(MAX_HANDLE_LEN + 8).collect(),
            reason,
        };
        if s.len() > MAX_HANDLE_LEN {
            return Err(fail("too long"));
        }
        let bytes = s.as_bytes();
        let prefix = bytes
            .get(..PREFIX_LETTERS)
            .ok_or_else(|| fail("too short"))?;
        if !prefix.iter().copied().all(is_handle_letter) {
            return Err(fail("it must start with 3 lowercase handle letters"));
        }
        let rest = bytes.get(PREFIX_LETTERS..).unwrap_or_default();
        let dash = rest
            .iter()
            .position(|&b| b == b'-')
            .ok_or_else(|| fail("the '-' before the node tag is missing"))?;
        let (digits, dash_and_tag) = rest.split_at(dash);
        let tag = dash_and_tag.get(1..).unwrap_or_default();
        if digits.is_empty() {
            return Err(fail("the counter after the 3 letters is missing"));
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(fail("the counter must be decimal digits"));
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(fail("the counter must not have leading zeros"));
        }
        // Digits only, so this is valid UTF-8; parsing rejects values above u64::MAX.
        let counter_text = std::str::from_utf8(digits).map_err(|_| fail("bad counter"))?;
        if counter_text.parse::<u64>().is_err() {
            return Err(fail("the counter is too large"));
        }
        if tag.len() != TAG_LETTERS || !tag.iter().copied().all(is_handle_letter) {
            return Err(fail(
                "the node tag after '-' must be 4 lowercase handle letters",
            ));
        }
        Ok(Handle(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> NodeId {
        NodeId([byte; 16])
    }

    #[test]
    fn new_handle_has_the_documented_shape() {
        let coordinator = id(7);
        let handle = Handle::new(12_345, 12, coordinator);
        let text = handle.to_string();
        let (head, tag) = text.split_once('-').expect("handle has a dash");
        assert_eq!(head.len(), 3 + 2, "3 letters then the counter 12 in {text}");
        assert!(head.ends_with("12"), "{text}");
        assert!(head.bytes().take(3).all(is_handle_letter), "{text}");
        assert_eq!(tag, node_tag(&coordinator));
        assert_eq!(handle.node_tag(), tag);
        assert_eq!(handle.counter(), 12);
        assert!(handle.is_from(&coordinator));
    }

    #[test]
    fn letters_depend_on_the_random_input() {
        let a = Handle::new(0, 1, id(1));
        let b = Handle::new(1, 1, id(1));
        assert_eq!(&a.as_str()[..3], "aaa");
        assert_eq!(&b.as_str()[..3], "baa");
        let last = Handle::new(22 + 22 * 23 + 22 * 23 * 23, 1, id(1));
        assert_eq!(&last.as_str()[..3], "zzz");
    }

    #[test]
    fn format_and_parse_round_trip() {
        for (seed, counter) in [(0, 0), (99, 1), (u64::MAX, u64::MAX), (42, 1_000_000)] {
            let handle = Handle::new(seed, counter, NodeId::random());
            let parsed: Handle = handle.to_string().parse().expect("own handle parses");
            assert_eq!(parsed, handle);
            assert_eq!(parsed.counter(), counter);
        }
        let parsed: Handle = "gxm12-hkpw".parse().expect("example parses");
        assert_eq!(parsed.node_tag(), "hkpw");
        assert_eq!(parsed.counter(), 12);
    }

    #[test]
    fn serde_uses_the_text_and_validates_it() {
        let handle: Handle = "gxm12-hkpw".parse().expect("valid");
        let json = serde_json::to_string(&handle).expect("serialize");
        assert_eq!(json, "\"gxm12-hkpw\"");
        let back: Handle = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, handle);
        assert!(serde_json::from_str::<Handle>("\"gxm12\"").is_err());
    }

    #[test]
    fn bad_handles_are_rejected_with_a_reason() {
        let cases = [
            ("", "too short"),
            ("gx", "too short"),
            ("gxm1", "'-'"),
            ("gxm-hkpw", "counter after"),
            ("gxm1a-hkpw", "decimal"),
            ("gxm01-hkpw", "leading zeros"),
            ("gxm99999999999999999999-hkpw", "too large"),
            ("gxm1-hkp", "node tag"),
            ("gxm1-hkpwx", "node tag"),
            ("gxm1-hkpi", "node tag"),
            ("gxm1-HKPW", "node tag"),
            ("Gxm1-hkpw", "3 lowercase"),
            ("gxo1-hkpw", "3 lowercase"),
            ("gxm1--hkpw", "node tag"),
            ("gxm1-hk-w", "node tag"),
            ("gxm+1-hkpw", "decimal"),
            ("gxm1-hkpé", "node tag"),
            ("ééé1-hkpw", "3 lowercase"),
        ];
        for (text, reason) in cases {
            let err = text.parse::<Handle>().expect_err(text);
            let message = err.to_string();
            assert!(message.contains(reason), "{text:?}: {message}");
            assert!(message.contains("gxm12-hkpw"), "{text:?}: {message}");
        }
        let huge = "a".repeat(10_000);
        let err = huge.parse::<Handle>().expect_err("huge");
        assert_eq!(err.reason, "too long");
        assert!(err.text.len() < 100);
    }

    #[test]
    fn node_tag_is_stable_for_an_id() {
        let node = NodeId::random();
        let tag = node_tag(&node);
        assert_eq!(tag.len(), 4);
        assert!(tag.bytes().all(is_handle_letter), "{tag}");
        assert_eq!(node_tag(&node), tag);
        assert_eq!(node_tag(&node.to_string().parse().expect("id")), tag);
        // Pinned so that a change to the derivation (which would break forwarding between
        // versions) cannot go unnoticed.
        assert_eq!(node_tag(&id(0)), node_tag(&NodeId([0; 16])));
        assert_eq!(node_tag(&id(0)), PINNED_TAG_OF_ZERO_ID);
    }

    const PINNED_TAG_OF_ZERO_ID: &str = "znpg";

    #[test]
    fn node_tag_varies_across_ids() {
        let tags: std::collections::BTreeSet<String> =
            (0..200u8).map(|b| node_tag(&id(b))).collect();
        // 200 draws from 279 841 values: a handful of collisions at most.
        assert!(tags.len() >= 195, "only {} distinct tags", tags.len());
        // Ids differing in one byte only still get different tags.
        let mut bytes = [0u8; 16];
        let base = node_tag(&NodeId(bytes));
        bytes[15] = 1;
        assert_ne!(node_tag(&NodeId(bytes)), base);
    }
}
