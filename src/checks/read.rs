//! Opening and reading regular files safely, for every check that reads a file's
//! contents (`file_contains`, `file_matches`, `file_hash`).
//!
//! [`LineMatch`] is where a line search ended, and the facts it reports.
//!
//! [`open_regular`] never blocks on a FIFO and never opens a device; [`next_chunk`] reads
//! in large chunks, stops once the check's deadline passes and enforces the size cap
//! even on a file that grows while it is read.

use std::fs::{File, FileType, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

use super::outcome::{CheckResult, Facts};
use super::run::CheckContext;

/// `O_NONBLOCK` on Linux (every architecture Rust supports there except alpha/parisc,
/// which Rust does not target). Spelled out because the crate forbids `unsafe` and does
/// not depend on `libc`.
const O_NONBLOCK: i32 = 0o4000;

/// Largest read. Large enough that per-read overhead vanishes next to the search.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Smallest read buffer (one page), for small and empty files.
pub(crate) const MIN_CHUNK_BYTES: usize = 4096;

/// What kind of file a non-regular file is, for error messages.
pub(crate) fn file_kind(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading only if it is a regular file no larger than `max_bytes`.
///
/// The path is stat-ed first so devices are never opened (opening some, like a
/// watchdog, has side effects) and is then opened with `O_NONBLOCK` and checked again
/// on the open descriptor, so a file swapped for a FIFO in between cannot block us.
/// Errors are one-line messages naming the path.
pub(crate) fn open_regular(path: &str, max_bytes: u64) -> Result<File, String> {
    let check = |meta: std::fs::Metadata| -> Result<(), String> {
        if !meta.is_file() {
            return Err(format!(
                "{path} is {}; only regular files can be read",
                file_kind(meta.file_type())
            ));
        }
        if meta.len() > max_bytes {
            return Err(format!(
                "{path} is {} bytes, above the limit of {max_bytes} bytes for content checks",
                meta.len()
            ));
        }
        Ok(())
    };
    check(std::fs::metadata(path).map_err(|e| format!("stat {path}: {e}"))?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))?;
    check(file.metadata().map_err(|e| format!("stat {path}: {e}"))?)?;
    Ok(file)
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
/// Fewer than `buf.len()` means end of file.
pub(crate) fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Where a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineMatch {
    /// The first matching line, counted from 1.
    Line(u64),
    /// No line matched; the file has this many lines.
    None { lines: u64 },
}

impl LineMatch {
    /// The result for this search: found `line=N`, or `line=none` and `lines=N`.
    pub(crate) fn result(self) -> CheckResult {
        match self {
            LineMatch::Line(n) => {
                CheckResult::holds(true, Facts::new().with("line", n.to_string()))
            }
            LineMatch::None { lines } => CheckResult::holds(
                false,
                Facts::new()
                    .with("line", "none")
                    .with("lines", lines.to_string()),
            ),
        }
    }
}

/// Reads the next chunk, enforcing the deadline and the size cap (a file can grow while
/// it is read). Returns the number of bytes read; fewer than `buf.len()` means EOF.
pub(crate) fn next_chunk(
    file: &mut File,
    buf: &mut [u8],
    total: &mut u64,
    path: &str,
    ctx: &CheckContext,
) -> Result<usize, CheckResult> {
    if ctx.expired() {
        return Err(ctx.timed_out());
    }
    let n = read_full(file, buf).map_err(|e| CheckResult::error(format!("read {path}: {e}")))?;
    *total += n as u64;
    if *total > ctx.max_file_bytes {
        return Err(CheckResult::error(format!(
            "{path} grew beyond the limit of {} bytes for content checks while being read",
            ctx.max_file_bytes
        )));
    }
    Ok(n)
}

/// The read buffer for `file`: its size plus one byte (so EOF shows without a second
/// read), between [`MIN_CHUNK_BYTES`] and [`CHUNK_BYTES`]. Most checked files are small
/// (`/etc/hosts`), so most checks need only a page. Not a fixed 1 MiB: glibc serves such a
/// buffer from the arena of whichever blocking thread runs the check, and once that
/// arena's dynamic mmap threshold has risen past 1 MiB it keeps the freed MiB resident,
/// one per arena (SECURITY.md, "Soak"). A file that grows after this is still read
/// whole, in more rounds.
pub(crate) fn chunk_len(file: &File) -> usize {
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    usize::try_from(len.saturating_add(1))
        .unwrap_or(CHUNK_BYTES)
        .clamp(MIN_CHUNK_BYTES, CHUNK_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::TempDir;

    #[test]
    fn open_regular_refuses_non_regular_files_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        let e = open_regular(&fifo, u64::MAX).unwrap_err();
        assert!(e.contains("is a FIFO"), "{e}");
        let e = open_regular("/dev/zero", u64::MAX).unwrap_err();
        assert!(e.contains("is a character device"), "{e}");
        let e = open_regular(&dir.path_str(), u64::MAX).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        let socket = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = open_regular(&socket, u64::MAX).unwrap_err();
        assert!(e.contains("is a socket"), "{e}");
        let big = dir.write("big", &[b'a'; 100]);
        let e = open_regular(&big, 99).unwrap_err();
        assert!(e.contains("above the limit of 99 bytes"), "{e}");
        assert!(open_regular(&big, 100).is_ok());
    }

    #[test]
    fn read_buffer_follows_the_file_size() {
        let dir = TempDir::new();
        let size_of = |data: &[u8]| {
            let path = dir.write("sized", data);
            chunk_len(&File::open(path).expect("open the test file"))
        };
        assert_eq!(size_of(b""), MIN_CHUNK_BYTES);
        assert_eq!(size_of(b"127.0.0.1 localhost\n"), MIN_CHUNK_BYTES);
        assert_eq!(size_of(&vec![b'x'; 10_000]), 10_001);
        assert_eq!(size_of(&vec![b'x'; CHUNK_BYTES * 2]), CHUNK_BYTES);
    }
}
