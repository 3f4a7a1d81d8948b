//! The `werify` binary: all behaviour lives in the library's [`werify::cli`] module.

fn main() -> std::process::ExitCode {
    werify::cli::main()
}
