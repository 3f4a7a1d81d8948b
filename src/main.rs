//! The `werify` binary: all behaviour lives in the library's [`werify::cli`] module. The one
//! thing done here, before any thread exists, is bounding glibc's malloc arenas (the library
//! forbids `unsafe`; this binary crate is where the single `mallopt` call can live).

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    werify::cli::main()
}

/// Arenas glibc may create. Its default is 8 per core: every thread that meets lock
/// contention gets an arena of its own, and a short-lived thread (the runtime's blocking
/// pool runs checks and store commits) leaves its arena behind holding mostly free,
/// never-trimmed pages, so a node under operation load grows to several times the memory
/// it uses. Two arenas keep the main thread and the blocking pool from contending on one
/// lock while bounding what is left behind.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Bounds glibc's malloc arenas to [`MALLOC_ARENAS`], unless the operator chose a bound
/// with `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES=glibc.malloc.arena_max=…` (glibc applied
/// those already; they win). Must run before the first thread is spawned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let set_by_env = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if set_by_env {
        return;
    }
    // SAFETY: mallopt only changes a malloc tunable; it is called before any other thread
    // exists, and M_ARENA_MAX takes any positive value. A failure (return 0) leaves glibc's
    // default in place, which is correct, only larger.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// Other C libraries (musl, macOS) have no per-thread arenas to bound.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
