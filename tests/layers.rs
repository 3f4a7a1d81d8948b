//! The layering of src/, checked on the source text: which werify modules and which
//! I/O crates each layer may name, and how long a file may grow before its tests.
//!
//! - `src/mesh/` (the sans-IO core) names no tokio, quinn, quinn_proto or rustls, and
//!   none of `crate::{rpc, ops, node, cli, checks}`;
//! - `src/rpc/` names none of `crate::{ops, node, cli}`;
//! - `src/ops/` names none of `crate::{node, cli}`;
//! - `src/base/` names no other werify module;
//! - `src/checks/` names no werify module but itself and `base`.
//!
//! `use` declarations and paths inside code both count (`crate::node::x`, grouped
//! `use crate::{ops, node::y}`, `super::super::node`, `$crate::…`, `#[tokio::test]`);
//! comments (doc comments included) and string literals do not: they are blanked out
//! before the scan.

use std::path::{Path, PathBuf};

/// Longest a source file may be before its inline test module (`#[cfg(test)] mod tests {`),
/// or in all when it has none, in lines.
const MAX_LINES_BEFORE_TESTS: usize = 1200;

/// I/O crates the sans-IO mesh must not name.
const IO_CRATES: &[&str] = &["tokio", "quinn", "quinn_proto", "rustls"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `text` with every comment and every string and char literal replaced by spaces
/// (newlines kept, so line numbers stay right).
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend(bytes.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    };
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br"))
            && (i == 0 || !is_ident(b[i - 1]))
            && raw_string_len(rest).is_some()
        {
            let n = raw_string_len(rest).expect("checked");
            blank(&mut out, &rest[..n]);
            i += n;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let n = (j + 1).min(rest.len());
            blank(&mut out, &rest[..n]);
            i += n;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only the former
            // closes with a quote soon after.
            let close = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch_len = std::str::from_utf8(&rest[1..rest.len().min(5)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(4)]).ok())
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(3)]).ok())
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(2)]).ok())
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + ch_len) == Some(&b'\'')).then_some(ch_len + 2)
            };
            match close {
                Some(n) => {
                    blank(&mut out, &rest[..n]);
                    i += n;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 (only ASCII is written in place)")
}

/// Length of the raw string literal (`r"…"`, `r#"…"#`, `br"…"`) at the start of `s`.
fn raw_string_len(s: &[u8]) -> Option<usize> {
    let mut j = if s.starts_with(b"br") { 2 } else { 1 };
    let hashes = s[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if s.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let end = s[j..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(j + end + close.len())
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other(char),
}

/// Identifiers, `::`, braces and commas of stripped source, with their line numbers.
fn tokens(code: &str) -> Vec<(Token, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = code.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            c if c.is_alphabetic() || c == '_' => {
                let mut ident = c.to_string();
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' {
                        ident.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push((Token::Ident(ident), line));
            }
            ':' if chars.peek().map(|&(_, n)| n) == Some(':') => {
                chars.next();
                out.push((Token::PathSep, line));
            }
            '{' => out.push((Token::Open, line)),
            '}' => out.push((Token::Close, line)),
            ',' => out.push((Token::Comma, line)),
            c => out.push((Token::Other(c), line)),
        }
    }
    out
}

/// One name a file uses: a werify top-level module (`crate::X`) or an external crate.
#[derive(Clone, Debug, PartialEq)]
enum Named {
    Module(String),
    Crate(String),
}

/// The werify modules (first segment after `crate::`, `$crate::` or a `super` chain that
/// reaches the crate root) and the external crates of `IO_CRATES` that `code` names,
/// with line numbers. `depth` is how many modules deep the file is (`src/mesh/x.rs`: 2,
/// `src/mesh/mod.rs`: 1).
fn names(code: &str, depth: usize) -> Vec<(Named, usize)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let ident = |i: usize| match toks.get(i) {
        Some((Token::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is_sep = |i: usize| matches!(toks.get(i), Some((Token::PathSep, _)));
    for i in 0..toks.len() {
        let Some(word) = ident(i) else { continue };
        let line = toks[i].1;
        // A segment in the middle of a path, or a field or method: not a path start.
        let after_sep = i > 0 && is_sep(i - 1);
        let leading_sep = after_sep && (i < 2 || !matches!(toks[i - 2].0, Token::Ident(_)));
        let after_dot = i > 0 && toks[i - 1].0 == Token::Other('.');
        if after_dot || (after_sep && !leading_sep) {
            continue;
        }
        if IO_CRATES.contains(&word) {
            out.push((Named::Crate(word.to_string()), line));
            continue;
        }
        // Where the path reaches the crate root, the index of the `::` after it.
        let root_sep = match word {
            "crate" if is_sep(i + 1) => Some(i + 1),
            "super" => {
                let mut j = i;
                let mut supers = 0;
                while ident(j) == Some("super") && is_sep(j + 1) {
                    supers += 1;
                    j += 2;
                }
                (supers >= depth).then(|| j - 1)
            }
            _ => None,
        };
        let Some(sep) = root_sep else { continue };
        match toks.get(sep + 1) {
            Some((Token::Ident(m), l)) => out.push((Named::Module(m.clone()), *l)),
            Some((Token::Open, _)) => {
                // `crate::{a::b, c, d::{e, f}}`: the first segment of each item.
                let mut level = 0;
                let mut expect_item = true;
                for (t, l) in &toks[sep + 1..] {
                    match t {
                        Token::Open => {
                            level += 1;
                            if level == 1 {
                                expect_item = true;
                            }
                        }
                        Token::Close => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        Token::Comma if level == 1 => expect_item = true,
                        Token::Ident(m) if level == 1 && expect_item => {
                            if m != "self" {
                                out.push((Named::Module(m.clone()), *l));
                            }
                            expect_item = false;
                        }
                        _ => {
                            if level == 1 {
                                expect_item = false;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// What `layer` (the first folder under src/) may not name, or `None` if it may name
/// anything.
fn forbidden(layer: &str, named: &Named) -> Option<&'static str> {
    match (layer, named) {
        ("mesh", Named::Crate(_)) => Some("the sans-IO mesh uses no I/O crate"),
        ("mesh", Named::Module(m))
            if ["rpc", "ops", "node", "cli", "checks"].contains(&m.as_str()) =>
        {
            Some("the mesh depends only on base")
        }
        ("rpc", Named::Module(m)) if ["ops", "node", "cli"].contains(&m.as_str()) => {
            Some("the wire knows nothing of operations, the node or the CLI")
        }
        ("ops", Named::Module(m)) if ["node", "cli"].contains(&m.as_str()) => Some(
            "operations reach the mesh through MeshAccess and know nothing of the node or the CLI",
        ),
        ("base", Named::Module(m)) if m != "base" => Some("base imports no other werify module"),
        ("checks", Named::Module(m)) if m != "checks" && m != "base" => {
            Some("checks depend only on themselves and base")
        }
        _ => None,
    }
}

/// Every layering violation in the file at `rel` (relative to src/) with text `text`.
fn violations(rel: &Path, text: &str) -> Vec<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let Some(layer) = parts.first().filter(|_| parts.len() > 1) else {
        return Vec::new();
    };
    let depth = if parts.last().is_some_and(|f| f == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    names(&strip_comments_and_strings(text), depth)
        .into_iter()
        .filter_map(|(named, line)| {
            forbidden(layer, &named).map(|why| {
                let what = match &named {
                    Named::Module(m) => format!("crate::{m}"),
                    Named::Crate(c) => c.clone(),
                };
                format!("src/{}:{line}: names {what} ({why})", rel.display())
            })
        })
        .collect()
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let root = src();
    let mut found = Vec::new();
    let mut scanned = 0;
    for path in rust_files(&root) {
        let rel = path.strip_prefix(&root).expect("under src/");
        let text = std::fs::read_to_string(&path).expect("read source file");
        found.extend(violations(rel, &text));
        scanned += 1;
    }
    assert!(
        scanned > 50,
        "only {scanned} source files found under {}",
        root.display()
    );
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

/// Lines before the file's inline test module: the first `#[cfg(test)]` followed by
/// `mod NAME {` (or `pub mod`, `pub(crate) mod`, …). A `#[cfg(test)]` on anything else (a
/// `mod testing;` declaration, a test-only method) does not end the count.
fn lines_before_inline_tests(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|w| {
            let next = without_visibility(w[1].trim());
            w[0].trim_start().starts_with("#[cfg(test)]")
                && next.starts_with("mod ")
                && next.ends_with('{')
        })
        .unwrap_or(lines.len())
}

/// `item` without a leading `pub` or `pub(…)`.
fn without_visibility(item: &str) -> &str {
    let Some(rest) = item.strip_prefix("pub") else {
        return item;
    };
    let rest = match rest.strip_prefix('(') {
        Some(scoped) => scoped.split_once(')').map_or(rest, |(_, after)| after),
        None => rest,
    };
    rest.trim_start()
}

#[test]
fn no_source_file_is_longer_than_1200_lines_before_its_tests() {
    let root = src();
    let mut long = Vec::new();
    for path in rust_files(&root) {
        let text = std::fs::read_to_string(&path).expect("read source file");
        let before = lines_before_inline_tests(&text);
        if before > MAX_LINES_BEFORE_TESTS {
            long.push(format!(
                "src/{}: {before} lines before its inline test module",
                path.strip_prefix(&root).expect("under src/").display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES_BEFORE_TESTS} lines (split them):\n{}",
        long.join("\n")
    );
}

#[test]
fn only_an_inline_test_module_ends_the_line_count() {
    let text = "a\n#[cfg(test)]\nmod testing;\nb\n#[cfg(test)]\nmod tests {\n}\n";
    assert_eq!(lines_before_inline_tests(text), 4);
    assert_eq!(lines_before_inline_tests("a\nb\n"), 2);
    let scoped = "a\nb\nc\n#[cfg(test)]\npub(crate) mod tests {\n}\n";
    assert_eq!(lines_before_inline_tests(scoped), 3);
    assert_eq!(
        lines_before_inline_tests("#[cfg(test)]\npub mod tests {\n}\n"),
        0
    );
    assert_eq!(
        lines_before_inline_tests("#[cfg(test)]\npublic_helper();\nmod tests {\n}\n"),
        4
    );
}

// The scanner itself: what counts as naming a module, and what does not.

fn check(rel: &str, text: &str) -> Vec<String> {
    violations(Path::new(rel), text)
}

#[test]
fn the_scanner_sees_use_declarations_groups_inline_paths_and_attributes() {
    assert_eq!(check("mesh/x.rs", "use crate::node::driver;\n").len(), 1);
    assert_eq!(
        check("mesh/x.rs", "use crate::{base::NodeId, rpc};\n").len(),
        1
    );
    assert_eq!(
        check(
            "mesh/x.rs",
            "use crate::{\n    ops::{a, b},\n    node,\n};\n"
        )
        .len(),
        2
    );
    assert_eq!(
        check("mesh/x.rs", "fn f() { crate::cli::run(); }\n").len(),
        1
    );
    assert_eq!(
        check("mesh/x.rs", "fn f() { ::tokio::spawn(g()); }\n").len(),
        1
    );
    assert_eq!(
        check("mesh/x.rs", "#[tokio::test]\nasync fn t() {}\n").len(),
        1
    );
    assert_eq!(
        check("mesh/x.rs", "use quinn_proto::X;\nuse rustls;\n").len(),
        2
    );
    assert_eq!(
        check("mesh/x.rs", "use super::super::checks::Outcome;\n").len(),
        1
    );
    assert_eq!(check("mesh/mod.rs", "use super::node;\n").len(), 1);
    assert_eq!(
        check("rpc/x.rs", "use crate::ops::handle::Handle;\n").len(),
        1
    );
    assert_eq!(
        check("ops/x.rs", "type M = crate::node::driver::MeshClient;\n").len(),
        1
    );
    assert_eq!(check("base/x.rs", "use crate::mesh::Peer;\n").len(), 1);
    assert_eq!(check("checks/x.rs", "use crate::rpc::frame;\n").len(), 1);
    let v = check("mesh/x.rs", "\n\nuse crate::rpc::tls;\n");
    assert!(
        v[0].starts_with("src/mesh/x.rs:3: names crate::rpc"),
        "{v:?}"
    );
}

#[test]
fn the_scanner_ignores_comments_strings_and_allowed_layers() {
    let allowed = [
        (
            "mesh/x.rs",
            "/// Driven by [`crate::node::driver`] over tokio.\nfn f() {}\n",
        ),
        (
            "mesh/x.rs",
            "//! See crate::rpc.\n/* crate::ops /* nested crate::cli */ */\n",
        ),
        (
            "mesh/x.rs",
            "const S: &str = \"crate::node and tokio::spawn\";\n",
        ),
        (
            "mesh/x.rs",
            "const S: &str = r#\"crate::node \"quoted\" tokio\"#;\n",
        ),
        (
            "mesh/x.rs",
            "fn f<'a>(x: &'a str) -> char { '\"' }\nuse crate::base::NodeId;\n",
        ),
        (
            "mesh/x.rs",
            "use super::member::Peer;\nuse crate::mesh::Message;\n",
        ),
        ("mesh/x.rs", "fn f(s: &S) { s.tokio(); my::tokio::x(); }\n"),
        (
            "rpc/x.rs",
            "use crate::{checks::CheckSet, mesh::PushPull};\nuse tokio::net;\n",
        ),
        ("ops/x.rs", "use crate::rpc::transport::Transport;\n"),
        (
            "checks/x.rs",
            "use crate::base::clock;\nuse crate::checks::Outcome;\n",
        ),
        ("node/x.rs", "use crate::{cli, ops, rpc, mesh};\n"),
        ("lib.rs", "pub mod node;\n"),
    ];
    for (rel, text) in allowed {
        assert_eq!(check(rel, text), Vec::<String>::new(), "{rel}: {text:?}");
    }
}
