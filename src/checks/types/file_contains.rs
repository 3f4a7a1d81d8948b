//! The `file_contains` check: does some line of a regular file contain a string? It
//! passes when some line contains the needle as a plain, case-sensitive byte substring.
//!
//! The file is opened with `open_regular` (regular files only, never blocking on a FIFO,
//! never opening a device, size capped) and read in large chunks, stopping when the
//! check's deadline passes. Lines are split on `'\n'`, and a `'\r'` before the `'\n'` (or
//! at the end of the file) is not part of the line, so CRLF files read like LF files.
//! Lines may be any length: the search runs `memchr::memmem` over whole chunks, carrying
//! the last bytes of each chunk into the next so matches across chunk boundaries are
//! found. A needle never contains `'\n'` (refused at submit), so every raw match lies
//! within one line.

use std::fs::File;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::read::{LineMatch, chunk_len, next_chunk, open_regular};
use crate::checks::run::{CheckContext, blocking};

/// `file_contains`: some line of a regular file contains `check` (plain substring).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileContains {
    /// Regular file to read.
    pub path: String,
    /// Case-sensitive substring; never contains `'\n'`.
    pub check: String,
}

impl CheckType for FileContains {
    const NAME: &'static str = "file_contains";
    const DOC: &'static str =
        "passes when a line of the regular file at path contains check (case-sensitive)";
    const FIELDS: &'static [FieldSpec] = &[
        req("path", FieldType::String),
        req("check", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(FileContains {
            path: fields.required("path"),
            check: fields.required("check"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("path", Typed::Str(self.path.clone())),
            ("check", Typed::Str(self.check.clone())),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)?;
        non_empty_text("check", &self.check)?;
        if self.check.contains('\n') {
            return Err(FieldProblem::on(
                "check",
                "check contains a newline, so it can never match a single line; \
                 use file_matches for multi-part patterns",
            ));
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        Facts::new().with("contains", self.check.as_str())
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        blocking(move || file_contains(&self.path, &self.check, &ctx)).await
    }
}

/// Found: the first matching `line` (from 1), or `line=none` and the file's `lines`.
fn file_contains(path: &str, needle: &str, ctx: &CheckContext) -> CheckResult {
    let mut file = match open_regular(path, ctx.max_file_bytes) {
        Ok(file) => file,
        Err(e) => return CheckResult::error(e),
    };
    match search(&mut file, needle.as_bytes(), path, ctx) {
        Ok(found) => found.result(),
        Err(result) => result,
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

fn search(
    file: &mut File,
    needle: &[u8],
    path: &str,
    ctx: &CheckContext,
) -> Result<LineMatch, CheckResult> {
    if needle.is_empty() {
        return Err(CheckResult::error("the text to look for is empty"));
    }
    let finder = memmem::Finder::new(needle);
    // A needle ending in '\r' must not match the '\r' that ends a line ("\r\n" or a final
    // "\r" at EOF), because that '\r' is not part of the line.
    let ends_with_cr = needle.last() == Some(&b'\r');
    // Keep the last `needle.len()` bytes of each window: enough to find a match that
    // straddles the boundary, and to see the byte after a match ending right at it.
    let carry = needle.len();
    let mut buf = vec![0u8; chunk_len(file) + carry];
    let mut kept = 0;
    let mut total = 0u64;
    // Lines ended before the window's first byte.
    let mut lines_before = 0u64;
    loop {
        let space = buf.len() - kept;
        let n = next_chunk(
            file,
            buf.get_mut(kept..).unwrap_or_default(),
            &mut total,
            path,
            ctx,
        )?;
        let eof = n < space;
        let end = kept + n;
        let window = buf.get(..end).unwrap_or_default();
        let line_of = |start: usize| {
            LineMatch::Line(lines_before + newlines(window.get(..start).unwrap_or_default()) + 1)
        };
        for start in finder.find_iter(window) {
            if !ends_with_cr {
                return Ok(line_of(start));
            }
            match window.get(start + needle.len()) {
                Some(b'\n') => {}
                Some(_) => return Ok(line_of(start)),
                // The match ends the window: at EOF its '\r' ends the last line; otherwise
                // the carried bytes let the next round decide.
                None => {}
            }
        }
        if eof {
            let unterminated = !window.is_empty() && window.last() != Some(&b'\n');
            return Ok(LineMatch::None {
                lines: lines_before + newlines(window) + u64::from(unterminated),
            });
        }
        let from = end.saturating_sub(carry);
        lines_before += newlines(window.get(..from).unwrap_or_default());
        buf.copy_within(from..end, 0);
        kept = end - from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::read::{CHUNK_BYTES, MIN_CHUNK_BYTES};
    use crate::checks::testutil::{TempDir, running_as_root};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    fn ctx() -> CheckContext {
        CheckContext::for_test(Duration::from_secs(30))
    }

    fn contains(path: &str, needle: &str) -> Outcome {
        file_contains(path, needle, &ctx()).outcome
    }

    #[test]
    fn finds_substrings_per_line_like_the_seed() {
        let dir = TempDir::new();
        let hosts = dir.write(
            "hosts",
            b"127.0.0.1 localhost\r\n10.0.0.1 db:4488\nlast line no newline",
        );
        assert_eq!(contains(&hosts, "4488"), Outcome::Success(true));
        assert_eq!(contains(&hosts, "localhost"), Outcome::Success(true));
        assert_eq!(contains(&hosts, "no newline"), Outcome::Success(true));
        assert_eq!(contains(&hosts, "LOCALHOST"), Outcome::Success(false));
        assert_eq!(contains(&hosts, "9999"), Outcome::Success(false));
        // The '\r' before '\n' is not part of the line.
        assert_eq!(contains(&hosts, "localhost\r"), Outcome::Success(false));
        let mid_cr = dir.write("cr", b"a\rb\nend\r");
        assert_eq!(contains(&mid_cr, "a\r"), Outcome::Success(true));
        assert_eq!(contains(&mid_cr, "end\r"), Outcome::Success(false));
        assert_eq!(contains(&mid_cr, "end"), Outcome::Success(true));
        let empty = dir.write("empty", b"");
        assert_eq!(contains(&empty, "x"), Outcome::Success(false));
    }

    #[test]
    fn reports_the_first_matching_line_or_how_many_lines_were_read() {
        let dir = TempDir::new();
        let hosts = dir.write(
            "hosts",
            b"127.0.0.1 localhost\n10.0.0.1 db:4488\n\nlast 4488",
        );
        let found = |needle: &str| file_contains(&hosts, needle, &ctx()).observation.found;
        assert_eq!(found("localhost").get("line"), Some("1"));
        assert_eq!(found("4488").get("line"), Some("2"));
        assert_eq!(found("last").get("line"), Some("4"));
        assert_eq!(found("9999").get("line"), Some("none"));
        assert_eq!(found("9999").get("lines"), Some("4"));
        let empty = dir.write("empty", b"");
        let none = file_contains(&empty, "x", &ctx()).observation.found;
        assert_eq!(none.get("lines"), Some("0"));
        // Line numbers count across chunk boundaries.
        let mut data = b"a\n".repeat(CHUNK_BYTES);
        data.extend_from_slice(b"NEEDLE\n");
        let big = dir.write("big", &data);
        let line = file_contains(&big, "NEEDLE", &ctx()).observation.found;
        assert_eq!(
            line.get("line"),
            Some((CHUNK_BYTES + 1).to_string().as_str())
        );
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let dir = TempDir::new();
        let missing = dir.join("missing");
        match contains(&missing, "x") {
            Outcome::Error(e) => {
                assert!(e.contains(&missing), "{e}");
                assert!(e.contains("No such file"), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn finds_matches_across_chunk_boundaries() {
        let dir = TempDir::new();
        let needle = "NEEDLE-4488";
        // Place the needle so it straddles the first chunk boundary at every split point.
        for split in 1..needle.len() {
            let mut data = vec![b'x'; CHUNK_BYTES - split];
            data.extend_from_slice(needle.as_bytes());
            data.extend_from_slice(b"yyy\n");
            let path = dir.write("boundary", &data);
            assert_eq!(
                contains(&path, needle),
                Outcome::Success(true),
                "split {split}"
            );
        }
        // A needle ending in '\r' whose '\r' is the last byte of the first chunk: the
        // deciding byte is in the next chunk.
        let mut data = vec![b'x'; CHUNK_BYTES - 3];
        data.extend_from_slice(b"ab\r\nab\rc\n");
        let path = dir.write("cr-boundary", &data);
        assert_eq!(contains(&path, "ab\r"), Outcome::Success(true));
        let mut data = vec![b'x'; CHUNK_BYTES - 3];
        data.extend_from_slice(b"ab\r\nzz\n");
        let path = dir.write("cr-boundary-2", &data);
        assert_eq!(contains(&path, "ab\r"), Outcome::Success(false));
    }

    #[test]
    fn a_file_that_grows_after_open_is_read_whole() {
        use std::io::Write;
        // The buffer is sized while the file is small; text appended afterwards, across
        // the small buffer's boundaries, is still searched.
        let dir = TempDir::new();
        let path = dir.write("growing", b"short\n");
        let mut opened = File::open(&path).expect("open the test file");
        let mut appended = vec![b'x'; MIN_CHUNK_BYTES - 10];
        appended.extend_from_slice(b"NEEDLE-4488 tail\n");
        appended.extend(vec![b'y'; 3 * MIN_CHUNK_BYTES]);
        appended.extend_from_slice(b"\nlast\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&appended))
            .expect("append to the test file");
        assert_eq!(
            search(&mut opened, b"NEEDLE-4488", &path, &ctx()),
            Ok(LineMatch::Line(2))
        );
    }

    #[test]
    fn long_lines_work() {
        let dir = TempDir::new();
        let mut data = vec![b'a'; 70_000];
        data.extend_from_slice(b"TAIL\nnext\n");
        let path = dir.write("long", &data);
        assert_eq!(contains(&path, "TAIL"), Outcome::Success(true));
        assert_eq!(contains(&path, "aTAIL"), Outcome::Success(true));
        let mut data = vec![b'b'; CHUNK_BYTES * 2 + 5];
        data.extend_from_slice(b"END");
        let path = dir.write("longer", &data);
        assert_eq!(contains(&path, "bEND"), Outcome::Success(true));
    }

    #[test]
    fn hostile_files_give_errors_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        for path in [fifo.as_str(), "/dev/zero", &dir.path_str()] {
            match contains(path, "x") {
                Outcome::Error(e) => assert!(e.contains("only regular files"), "{path}: {e}"),
                other => panic!("{path}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn permission_denied_is_an_error() {
        if running_as_root() {
            eprintln!("skipping the EACCES assertion: root can read a mode-000 file");
            return;
        }
        let dir = TempDir::new();
        let path = dir.write("secret", b"x");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        match contains(&path, "x") {
            Outcome::Error(e) => assert!(e.contains("Permission denied"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn size_cap_and_deadline_are_enforced() {
        let dir = TempDir::new();
        let path = dir.write("f", &[b'a'; 1000]);
        let mut small = ctx();
        small.max_file_bytes = 999;
        match file_contains(&path, "b", &small).outcome {
            Outcome::Error(e) => assert!(e.contains("above the limit of 999 bytes"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        let mut late = ctx();
        late.deadline = Instant::now();
        assert!(
            matches!(file_contains(&path, "b", &late).outcome, Outcome::Error(e) if e.contains("timed out"))
        );
    }
}
