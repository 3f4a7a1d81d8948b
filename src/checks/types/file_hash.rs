//! The `file_hash` check: does a regular file have the expected content? It passes when
//! the SHA-256 of the whole file equals the expected hex digest (compared
//! case-insensitively; the parser stores it lowercase).
//!
//! The file is opened and read as for `file_contains` (regular files only, size capped,
//! deadline watched).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::read::{chunk_len, next_chunk, open_regular};
use crate::checks::run::{CheckContext, blocking};

/// `file_hash`: the SHA-256 of a regular file equals `sha256`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHash {
    /// Regular file to hash.
    pub path: String,
    /// Expected digest, 64 hex digits (compared case-insensitively).
    pub sha256: String,
}

impl CheckType for FileHash {
    const NAME: &'static str = "file_hash";
    const DOC: &'static str = "passes when the SHA-256 of the regular file at path equals sha256";
    const FIELDS: &'static [FieldSpec] = &[
        req("path", FieldType::String),
        req("sha256", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(FileHash {
            path: fields.required("path"),
            sha256: fields.required("sha256").to_ascii_lowercase(),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("path", Typed::Str(self.path.clone())),
            ("sha256", Typed::Str(self.sha256.clone())),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)?;
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FieldProblem::on(
                "sha256",
                "sha256 must be 64 hex digits (as printed by sha256sum)",
            ));
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        Facts::new().with("sha256", self.sha256.to_ascii_lowercase())
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        blocking(move || file_hash(&self.path, &self.sha256, &ctx)).await
    }
}

/// Runs `file_hash`; `expected_hex` is compared case-insensitively. Found: `sha256`, the
/// file's digest in lower-case hex.
fn file_hash(path: &str, expected_hex: &str, ctx: &CheckContext) -> CheckResult {
    match sha256_hex(path, ctx) {
        Ok(digest) => CheckResult::holds(
            digest.eq_ignore_ascii_case(expected_hex),
            Facts::new().with("sha256", digest),
        ),
        Err(result) => result,
    }
}

/// The SHA-256 of the regular file at `path`, as 64 lowercase hex digits; the error is
/// the check's result when the file cannot be read (or the deadline passed).
pub(crate) fn sha256_hex(path: &str, ctx: &CheckContext) -> Result<String, CheckResult> {
    let mut file = open_regular(path, ctx.max_file_bytes).map_err(CheckResult::error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; chunk_len(&file)];
    let mut total = 0u64;
    loop {
        let n = next_chunk(&mut file, &mut buf, &mut total, path, ctx)?;
        hasher.update(buf.get(..n).unwrap_or_default());
        if n < buf.len() {
            break;
        }
    }
    Ok(crate::base::hex::encode(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::read::CHUNK_BYTES;
    use crate::checks::testutil::TempDir;
    use std::time::Duration;

    fn ctx() -> CheckContext {
        CheckContext::for_test(Duration::from_secs(30))
    }

    #[test]
    fn hostile_files_give_errors_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        for path in [fifo.as_str(), "/dev/zero", &dir.path_str()] {
            match file_hash(path, &"0".repeat(64), &ctx()).outcome {
                Outcome::Error(e) => assert!(e.contains("only regular files"), "{path}: {e}"),
                other => panic!("{path}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn file_hash_compares_sha256_case_insensitively() {
        let dir = TempDir::new();
        let path = dir.write("h", b"abc");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_hash(&path, abc, &ctx()), Outcome::Success(true));
        assert_eq!(
            file_hash(&path, &abc.to_ascii_uppercase(), &ctx()),
            Outcome::Success(true)
        );
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(file_hash(&path, empty, &ctx()), Outcome::Success(false));
        let empty_file = dir.write("e", b"");
        assert_eq!(
            file_hash(&empty_file, empty, &ctx()),
            Outcome::Success(true)
        );
        // Exactly one chunk, then EOF on the next read.
        let chunk = dir.write("chunk", &vec![0u8; CHUNK_BYTES]);
        let expected = crate::base::hex::encode(&Sha256::digest(vec![0u8; CHUNK_BYTES]));
        assert_eq!(file_hash(&chunk, &expected, &ctx()), Outcome::Success(true));
    }
}
