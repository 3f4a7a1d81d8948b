//! Checks that read a regular file's contents: `file_contains`, `file_matches` and
//! `file_hash`.
//!
//! All three open the file with `open_regular` (regular files only, never blocking on a
//! FIFO, never opening a device, size capped) and read it in large chunks, stopping when
//! the check's deadline passes.
//!
//! * `file_contains`: passes when some line contains the needle as a plain, case-sensitive
//!   byte substring. Lines are split on `'\n'` and a `'\r'` before the `'\n'` (or at the
//!   end of the file) is not part of the line, like the seed. Lines may be any length.
//!   The search runs `memchr::memmem` over whole chunks, carrying the last bytes of each
//!   chunk into the next so matches across chunk boundaries are found. A needle never
//!   contains `'\n'` (refused at submit), so every raw match lies within one line.
//! * `file_matches`: passes when some line (same splitting, `'\r'` stripped) matches the
//!   regex; lines up to [`MAX_REGEX_LINE_BYTES`] long.
//! * `file_hash`: passes when the SHA-256 of the whole file equals the expected hex digest.

use std::fs::File;

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};
use sha2::{Digest, Sha256};

use super::Outcome;
use super::read::{chunk_len, next_chunk, open_regular};
use super::run::CheckContext;

/// Longest line `file_matches` will hold in memory to run the regex on it.
pub const MAX_REGEX_LINE_BYTES: usize = 16 << 20;

/// Compiled size limit for `file_matches` patterns, so a hostile pattern cannot make a
/// node allocate without bound.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// Compiles a `file_matches` pattern; the error is one line ("invalid regex: …").
pub(crate) fn compile_line_regex(pattern: &str) -> Result<Regex, String> {
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

/// Runs `file_contains`.
pub(crate) fn file_contains(path: &str, needle: &str, ctx: &CheckContext) -> Outcome {
    let mut file = match open_regular(path, ctx.max_file_bytes) {
        Ok(file) => file,
        Err(e) => return Outcome::Error(e),
    };
    match search(&mut file, needle.as_bytes(), path, ctx) {
        Ok(found) => Outcome::Success(found),
        Err(outcome) => outcome,
    }
}

fn search(file: &mut File, needle: &[u8], path: &str, ctx: &CheckContext) -> Result<bool, Outcome> {
    if needle.is_empty() {
        return Err(Outcome::Error("the text to look for is empty".into()));
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
        for start in finder.find_iter(window) {
            if !ends_with_cr {
                return Ok(true);
            }
            match window.get(start + needle.len()) {
                Some(b'\n') => {}
                Some(_) => return Ok(true),
                // The match ends the window: at EOF its '\r' ends the last line; otherwise
                // the carried bytes let the next round decide.
                None => {}
            }
        }
        if eof {
            return Ok(false);
        }
        let from = end.saturating_sub(carry);
        buf.copy_within(from..end, 0);
        kept = end - from;
    }
}

/// Runs `file_matches`.
pub(crate) fn file_matches(path: &str, pattern: &str, ctx: &CheckContext) -> Outcome {
    let regex = match compile_line_regex(pattern) {
        Ok(regex) => regex,
        Err(e) => return Outcome::Error(e),
    };
    let mut file = match open_regular(path, ctx.max_file_bytes) {
        Ok(file) => file,
        Err(e) => return Outcome::Error(e),
    };
    match match_lines(&mut file, &regex, path, ctx) {
        Ok(found) => Outcome::Success(found),
        Err(outcome) => outcome,
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
) -> Result<bool, Outcome> {
    let mut buf = vec![0u8; chunk_len(file)];
    let mut kept = 0; // bytes of an unfinished line at the front of `buf`
    let mut total = 0u64;
    let mut line_number = 1u64;
    loop {
        if kept == buf.len() {
            // One line fills the whole buffer: grow, up to the line limit.
            if buf.len() >= MAX_REGEX_LINE_BYTES {
                return Err(Outcome::Error(format!(
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
                return Ok(true);
            }
            line_number += 1;
            line_start = newline + 1;
        }
        if eof {
            let last = window.get(line_start..).unwrap_or_default();
            return Ok(!last.is_empty() && regex.is_match(strip_cr(last)));
        }
        buf.copy_within(line_start..end, 0);
        kept = end - line_start;
    }
}

/// Runs `file_hash`; `expected_hex` is compared case-insensitively.
pub(crate) fn file_hash(path: &str, expected_hex: &str, ctx: &CheckContext) -> Outcome {
    let mut file = match open_regular(path, ctx.max_file_bytes) {
        Ok(file) => file,
        Err(e) => return Outcome::Error(e),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; chunk_len(&file)];
    let mut total = 0u64;
    loop {
        let n = match next_chunk(&mut file, &mut buf, &mut total, path, ctx) {
            Ok(n) => n,
            Err(outcome) => return outcome,
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        if n < buf.len() {
            break;
        }
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Outcome::Success(digest.eq_ignore_ascii_case(expected_hex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::read::{CHUNK_BYTES, MIN_CHUNK_BYTES};
    use crate::checks::testutil::{TempDir, running_as_root};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    fn ctx() -> CheckContext {
        CheckContext::for_test(Duration::from_secs(30))
    }

    fn contains(path: &str, needle: &str) -> Outcome {
        file_contains(path, needle, &ctx())
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
            assert_eq!(
                file_matches(&path, "NEEDLE-\\d+yyy$", &ctx()),
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
        // The buffers are sized while the file is small; text appended afterwards, across
        // the small buffers' boundaries, is still searched.
        let dir = TempDir::new();
        let path = dir.write("growing", b"short\n");
        let opened = || File::open(&path).expect("open the test file");
        let (mut for_contains, mut for_matches, mut for_last) = (opened(), opened(), opened());
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
            search(&mut for_contains, b"NEEDLE-4488", &path, &ctx()),
            Ok(true)
        );
        let tail = compile_line_regex("^x+NEEDLE-\\d+ tail$").expect("regex");
        assert_eq!(
            match_lines(&mut for_matches, &tail, &path, &ctx()),
            Ok(true)
        );
        let last = compile_line_regex("^last$").expect("regex");
        assert_eq!(match_lines(&mut for_last, &last, &path, &ctx()), Ok(true));
    }

    #[test]
    fn long_lines_work() {
        let dir = TempDir::new();
        let mut data = vec![b'a'; 70_000];
        data.extend_from_slice(b"TAIL\nnext\n");
        let path = dir.write("long", &data);
        assert_eq!(contains(&path, "TAIL"), Outcome::Success(true));
        assert_eq!(contains(&path, "aTAIL"), Outcome::Success(true));
        assert_eq!(
            file_matches(&path, "^a+TAIL$", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            file_matches(&path, "^next$", &ctx()),
            Outcome::Success(true)
        );
        // A line longer than one chunk, for the regex path's buffer growth.
        let mut data = vec![b'b'; CHUNK_BYTES * 2 + 5];
        data.extend_from_slice(b"END");
        let path = dir.write("longer", &data);
        assert_eq!(
            file_matches(&path, "^b+END$", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(contains(&path, "bEND"), Outcome::Success(true));
    }

    #[test]
    fn hostile_files_give_errors_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        for path in [fifo.as_str(), "/dev/zero", &dir.path_str()] {
            for outcome in [
                contains(path, "x"),
                file_matches(path, "x", &ctx()),
                file_hash(path, &"0".repeat(64), &ctx()),
            ] {
                match outcome {
                    Outcome::Error(e) => assert!(e.contains("only regular files"), "{path}: {e}"),
                    other => panic!("{path}: expected an error, got {other:?}"),
                }
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
        match file_contains(&path, "b", &small) {
            Outcome::Error(e) => assert!(e.contains("above the limit of 999 bytes"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        let mut late = ctx();
        late.deadline = Instant::now();
        assert!(
            matches!(file_contains(&path, "b", &late), Outcome::Error(e) if e.contains("timed out"))
        );
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
        let expected: String = Sha256::digest(vec![0u8; CHUNK_BYTES])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(file_hash(&chunk, &expected, &ctx()), Outcome::Success(true));
    }
}
