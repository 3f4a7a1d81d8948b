//! The `file_matches` check: does some line of a regular file match a regex?
//!
//! The file is opened and read as for `file_contains` (regular files only, size capped,
//! deadline watched); lines are split on `'\n'` with a trailing `'\r'` stripped, and are
//! matched as bytes, so non-UTF-8 content is searched too. A line is held whole to run
//! the regex on it, up to [`MAX_REGEX_LINE_BYTES`].

use std::fs::File;

use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::read::{LineMatch, chunk_len, next_chunk, open_regular};
use crate::checks::run::{CheckContext, blocking};

/// Longest line `file_matches` will hold in memory to run the regex on it.
pub const MAX_REGEX_LINE_BYTES: usize = 16 << 20;

/// Compiled size limit for `file_matches` patterns, so a hostile pattern cannot make a
/// node allocate without bound.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// `file_matches`: some line of a regular file matches the regex `pattern`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileMatches {
    /// Regular file to read.
    pub path: String,
    /// Regular expression (regex crate syntax), applied to each line.
    pub pattern: String,
}

impl CheckType for FileMatches {
    const NAME: &'static str = "file_matches";
    const DOC: &'static str =
        "passes when a line of the regular file at path matches the regex pattern";
    const FIELDS: &'static [FieldSpec] = &[
        req("path", FieldType::String),
        req("pattern", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(FileMatches {
            path: fields.required("path"),
            pattern: fields.required("pattern"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("path", Typed::Str(self.path.clone())),
            ("pattern", Typed::Str(self.pattern.clone())),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)?;
        non_empty_text("pattern", &self.pattern)?;
        compile_line_regex(&self.pattern)
            .map(drop)
            .map_err(|e| FieldProblem::on("pattern", e))
    }

    fn expected(&self) -> Facts {
        Facts::new().with("pattern", self.pattern.as_str())
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        blocking(move || file_matches(&self.path, &self.pattern, &ctx)).await
    }
}

/// Compiles a `file_matches` pattern; the error is one line ("invalid regex: …").
fn compile_line_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // regex's syntax errors are multi-line drawings; keep the final reason line.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("error:"))
                .map(str::trim)
                .map(str::to_owned)
                .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "));
            format!("invalid regex: {reason}")
        })
}

/// Found: the first matching `line` (from 1), or `line=none` and the file's `lines`.
fn file_matches(path: &str, pattern: &str, ctx: &CheckContext) -> CheckResult {
    let regex = match compile_line_regex(pattern) {
        Ok(regex) => regex,
        Err(e) => return CheckResult::error(e),
    };
    let mut file = match open_regular(path, ctx.max_file_bytes) {
        Ok(file) => file,
        Err(e) => return CheckResult::error(e),
    };
    match match_lines(&mut file, &regex, path, ctx) {
        Ok(found) => found.result(),
        Err(result) => result,
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn match_lines(
    file: &mut File,
    regex: &Regex,
    path: &str,
    ctx: &CheckContext,
) -> Result<LineMatch, CheckResult> {
    let mut buf = vec![0u8; chunk_len(file)];
    let mut kept = 0; // bytes of an unfinished line at the front of `buf`
    let mut total = 0u64;
    let mut line_number = 1u64;
    loop {
        if kept == buf.len() {
            // One line fills the whole buffer: grow, up to the line limit.
            if buf.len() >= MAX_REGEX_LINE_BYTES {
                return Err(CheckResult::error(format!(
                    "line {line_number} of {path} is longer than {MAX_REGEX_LINE_BYTES} bytes; \
                     file_matches needs whole lines (file_contains has no line limit)"
                )));
            }
            buf.resize((buf.len() * 2).min(MAX_REGEX_LINE_BYTES), 0);
        }
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
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', window) {
            let line = window.get(line_start..newline).unwrap_or_default();
            if regex.is_match(strip_cr(line)) {
                return Ok(LineMatch::Line(line_number));
            }
            line_number += 1;
            line_start = newline + 1;
        }
        if eof {
            let last = window.get(line_start..).unwrap_or_default();
            if last.is_empty() {
                return Ok(LineMatch::None {
                    lines: line_number - 1,
                });
            }
            if regex.is_match(strip_cr(last)) {
                return Ok(LineMatch::Line(line_number));
            }
            return Ok(LineMatch::None { lines: line_number });
        }
        buf.copy_within(line_start..end, 0);
        kept = end - line_start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::read::{CHUNK_BYTES, MIN_CHUNK_BYTES};
    use crate::checks::testutil::TempDir;
    use std::time::Duration;

    fn ctx() -> CheckContext {
        CheckContext::for_test(Duration::from_secs(30))
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
                file_matches(&path, "NEEDLE-\\d+yyy$", &ctx()),
                Outcome::Success(true),
                "split {split}"
            );
        }
    }

    #[test]
    fn a_file_that_grows_after_open_is_read_whole() {
        use std::io::Write;
        // The buffers are sized while the file is small; text appended afterwards, across
        // the small buffers' boundaries, is still searched.
        let dir = TempDir::new();
        let path = dir.write("growing", b"short\n");
        let opened = || File::open(&path).expect("open the test file");
        let (mut for_matches, mut for_last) = (opened(), opened());
        let mut appended = vec![b'x'; MIN_CHUNK_BYTES - 10];
        appended.extend_from_slice(b"NEEDLE-4488 tail\n");
        appended.extend(vec![b'y'; 3 * MIN_CHUNK_BYTES]);
        appended.extend_from_slice(b"\nlast\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&appended))
            .expect("append to the test file");
        let tail = compile_line_regex("^x+NEEDLE-\\d+ tail$").expect("regex");
        assert_eq!(
            match_lines(&mut for_matches, &tail, &path, &ctx()),
            Ok(LineMatch::Line(2))
        );
        let last = compile_line_regex("^last$").expect("regex");
        assert_eq!(
            match_lines(&mut for_last, &last, &path, &ctx()),
            Ok(LineMatch::Line(4))
        );
    }

    #[test]
    fn long_lines_work() {
        let dir = TempDir::new();
        let mut data = vec![b'a'; 70_000];
        data.extend_from_slice(b"TAIL\nnext\n");
        let path = dir.write("long", &data);
        assert_eq!(
            file_matches(&path, "^a+TAIL$", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            file_matches(&path, "^next$", &ctx()),
            Outcome::Success(true)
        );
        // A line longer than one chunk, for the buffer growth.
        let mut data = vec![b'b'; CHUNK_BYTES * 2 + 5];
        data.extend_from_slice(b"END");
        let path = dir.write("longer", &data);
        assert_eq!(
            file_matches(&path, "^b+END$", &ctx()),
            Outcome::Success(true)
        );
    }

    #[test]
    fn hostile_files_give_errors_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        for path in [fifo.as_str(), "/dev/zero", &dir.path_str()] {
            match file_matches(path, "x", &ctx()).outcome {
                Outcome::Error(e) => assert!(e.contains("only regular files"), "{path}: {e}"),
                other => panic!("{path}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn file_matches_uses_regex_per_line() {
        let dir = TempDir::new();
        let path = dir.write("conf", b"PermitRootLogin no\r\nPort 22\n");
        assert_eq!(
            file_matches(&path, "^Port\\s+\\d+$", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            file_matches(&path, "^PermitRootLogin no$", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            file_matches(&path, "^PermitRootLogin yes", &ctx()),
            Outcome::Success(false)
        );
        // Per line: a pattern spanning the newline never matches.
        assert_eq!(
            file_matches(&path, "no\\s+Port", &ctx()),
            Outcome::Success(false)
        );
        // Non-UTF-8 content is searched as bytes.
        let binary = dir.write("bin", b"\xff\xfe key=1\n");
        assert_eq!(
            file_matches(&binary, "key=\\d", &ctx()),
            Outcome::Success(true)
        );
        let e = compile_line_regex("a(").unwrap_err();
        assert!(e.starts_with("invalid regex: ") && !e.contains('\n'), "{e}");
    }
}
