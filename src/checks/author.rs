//! Writing operations files: one check rendered in the JSON or the YAML layout, and one
//! check added to the text of an existing file with everything in it kept.
//!
//! Adding never rewrites what is there: the new check is inserted as text (before the
//! closing `}` of a JSON object or of a YAML flow mapping, after the last line of a YAML
//! block mapping, at the indentation the file already uses), so other checks, their
//! order, the layout and YAML comments stay as they were. The result is parsed again and
//! must hold exactly the old checks plus the new one; otherwise nothing is returned but
//! an error that shows the check to add by hand. The file itself (reading, replacing it)
//! is the caller's: this module works on text.

use std::fmt::Write as _;

use super::check_type::Typed;
use super::duration::format_duration;
use super::json::{self, Value};
use super::parse::{FileFormat, parse_operations_as};
use super::spec::{Check, MAX_CHECKS, SpecError};
use super::yaml;

/// Why a check could not be added to a file.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The file is not a valid operations file; it was left alone.
    #[error("{0}\n(the file was left unchanged: fix it, then add the check again)")]
    Invalid(SpecError),
    /// The file already has a check of that name.
    #[error(
        "{file} already has a check named \"{name}\"; choose another name with --name, or remove that check first"
    )]
    Duplicate {
        /// The file label.
        file: String,
        /// The name asked for.
        name: String,
    },
    /// The file already holds as many checks as an operation may carry.
    #[error(
        "{file} already has {MAX_CHECKS} checks, the most one operation may carry; start another file"
    )]
    Full {
        /// The file label.
        file: String,
    },
    /// The file's layout leaves no place to insert text that parses as intended.
    #[error(
        "cannot add the check to {file} without rewriting its layout; add it by hand:\n{snippet}"
    )]
    Layout {
        /// The file label.
        file: String,
        /// The check as it would be written.
        snippet: String,
    },
}

/// A whole operations file holding one check.
pub fn render_file(name: &str, check: &Check, format: FileFormat) -> String {
    match format {
        FileFormat::Json => format!("{{\n{}\n}}\n", json_member(name, check, "  ")),
        FileFormat::Yaml => yaml_block_member(name, check, ""),
    }
}

/// `text` (the content of the operations file `label`, which may be empty) with the
/// check `name` added, in `format`. The file must be a valid operations file without a
/// check of that name; see the module doc for what is kept.
pub fn add_to_text(
    text: &str,
    label: &str,
    format: FileFormat,
    name: &str,
    check: &Check,
) -> Result<String, AddError> {
    let added = match format {
        FileFormat::Json => add_json(text, label, name, check)?,
        FileFormat::Yaml => add_yaml(text, label, name, check)?,
    };
    // What was there, plus the new check, and nothing else.
    let mut expected = parse_operations_as(text, label, format).unwrap_or_default();
    expected.checks.insert(name.to_string(), check.clone());
    match parse_operations_as(&added, label, format) {
        Ok(set) if set == expected => Ok(added),
        _ => Err(AddError::Layout {
            file: label.into(),
            snippet: render_file(name, check, format),
        }),
    }
}

/// The checks already in a non-empty file, refused when `name` cannot join them.
fn existing(text: &str, label: &str, format: FileFormat, name: &str) -> Result<(), AddError> {
    let set = parse_operations_as(text, label, format).map_err(AddError::Invalid)?;
    if set.get(name).is_some() {
        return Err(AddError::Duplicate {
            file: label.into(),
            name: name.into(),
        });
    }
    if set.len() >= MAX_CHECKS {
        return Err(AddError::Full { file: label.into() });
    }
    Ok(())
}

fn add_json(text: &str, label: &str, name: &str, check: &Check) -> Result<String, AddError> {
    let empty = text.trim().is_empty()
        || matches!(json::parse(text), Ok(doc) if doc.value == Value::Object(Vec::new()));
    if empty {
        return Ok(render_file(name, check, FileFormat::Json));
    }
    existing(text, label, FileFormat::Json, name)?;
    let (Ok(doc), Some(close)) = (json::parse(text), text.rfind('}')) else {
        return Err(layout(label, name, check, FileFormat::Json));
    };
    let before = text.get(..close).unwrap_or_default().trim_end();
    let after = text.get(close..).unwrap_or_default();
    let first_key = match &doc.value {
        Value::Object(members) => members.first().map(|m| m.key_offset),
        _ => None,
    };
    let inserted = match first_key.and_then(|offset| line_indent(text, offset)) {
        // One member per line: the new one too, at the same indentation.
        Some(indent) => format!("{before},\n{}\n{after}", json_member(name, check, indent)),
        // All on one line: the new member inline.
        None => format!("{before}, {}{after}", json_inline_member(name, check)),
    };
    Ok(inserted)
}

fn add_yaml(text: &str, label: &str, name: &str, check: &Check) -> Result<String, AddError> {
    let document = yaml::parse_document(text).map_err(|_| {
        // The parse error, with its position, as submitting the file would give it.
        match parse_operations_as(text, label, FileFormat::Yaml) {
            Err(e) => AddError::Invalid(e),
            Ok(_) => layout(label, name, check, FileFormat::Yaml),
        }
    })?;
    let Some(document) = document else {
        // Nothing but comments (or nothing): they stay, the check follows them.
        return Ok(format!(
            "{}{}",
            with_final_newline(text),
            yaml_block_member(name, check, "")
        ));
    };
    let members = match &document.root.value {
        Value::Object(members) => members,
        _ => {
            existing(text, label, FileFormat::Yaml, name)?;
            return Err(layout(label, name, check, FileFormat::Yaml));
        }
    };
    if !members.is_empty() {
        existing(text, label, FileFormat::Yaml, name)?;
    }
    if let Some(close) = document.root_flow_end {
        let before = text.get(..close).unwrap_or_default().trim_end();
        let after = text.get(close..).unwrap_or_default();
        let comma = if members.is_empty() { "" } else { "," };
        return Ok(format!(
            "{before}{comma} {}{after}",
            yaml_flow_member(name, check)
        ));
    }
    let indent = members
        .first()
        .and_then(|m| line_indent(text, m.key_offset))
        .unwrap_or_default();
    Ok(format!(
        "{}{}",
        with_final_newline(text),
        yaml_block_member(name, check, indent)
    ))
}

fn layout(label: &str, name: &str, check: &Check, format: FileFormat) -> AddError {
    AddError::Layout {
        file: label.into(),
        snippet: render_file(name, check, format),
    }
}

/// The whitespace before `offset` on its line, when nothing else precedes it there.
fn line_indent(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let indent = before.get(start..)?;
    indent
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(indent)
}

fn with_final_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Every field of a check as a file writes it: `type`, the type's fields, then `expect`
/// and `timeout` when they are not the defaults.
fn check_fields(check: &Check) -> Vec<(&'static str, Typed)> {
    let mut fields = vec![("type", Typed::Str(check.kind.type_name().to_string()))];
    fields.extend(check.kind.to_fields());
    if !check.expect {
        fields.push(("expect", Typed::Bool(false)));
    }
    if let Some(timeout) = check.timeout {
        fields.push(("timeout", Typed::Dur(timeout)));
    }
    fields
}

/// `"name": {` one field per line `}`, the member at `indent`, its fields one level
/// deeper.
fn json_member(name: &str, check: &Check, indent: &str) -> String {
    let inner = if indent.is_empty() {
        "  ".to_string()
    } else {
        indent.repeat(2)
    };
    let fields: Vec<String> = check_fields(check)
        .iter()
        .map(|(key, value)| format!("{inner}{}: {}", json_string(key), json_value(value)))
        .collect();
    format!(
        "{indent}{}: {{\n{}\n{indent}}}",
        json_string(name),
        fields.join(",\n")
    )
}

/// `"name": {"type": …, …}` on one line.
fn json_inline_member(name: &str, check: &Check) -> String {
    let fields: Vec<String> = check_fields(check)
        .iter()
        .map(|(key, value)| format!("{}: {}", json_string(key), json_value(value)))
        .collect();
    format!("{}: {{{}}}", json_string(name), fields.join(", "))
}

fn json_string(s: &str) -> String {
    // Serializing a string cannot fail; the fallback keeps this total anyway.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn json_value(value: &Typed) -> String {
    match value {
        Typed::Str(s) => json_string(s),
        Typed::List(items) => {
            let items: Vec<String> = items.iter().map(|s| json_string(s)).collect();
            format!("[{}]", items.join(", "))
        }
        Typed::Int(i) => i.to_string(),
        Typed::Num(n) => n.to_string(),
        Typed::Bool(b) => b.to_string(),
        Typed::Dur(d) => json_string(&format_duration(*d)),
        Typed::Mode(m) => json_string(&format!("{m:04o}")),
    }
}

/// `name:` then one `field: value` line per field, the name at `indent`, the fields two
/// spaces deeper; ends with a newline.
fn yaml_block_member(name: &str, check: &Check, indent: &str) -> String {
    let mut out = format!("{indent}{}:\n", yaml_string(name));
    for (key, value) in check_fields(check) {
        let _ = writeln!(out, "{indent}  {key}: {}", yaml_value(&value));
    }
    out
}

/// `name: {type: …, …}`, usable inside a flow mapping.
fn yaml_flow_member(name: &str, check: &Check) -> String {
    let fields: Vec<String> = check_fields(check)
        .iter()
        .map(|(key, value)| format!("{key}: {}", yaml_value(value)))
        .collect();
    format!("{}: {{{}}}", yaml_string(name), fields.join(", "))
}

fn yaml_value(value: &Typed) -> String {
    match value {
        Typed::Str(s) => yaml_string(s),
        Typed::List(items) => {
            let items: Vec<String> = items.iter().map(|s| yaml_string(s)).collect();
            format!("[{}]", items.join(", "))
        }
        Typed::Int(i) => i.to_string(),
        Typed::Num(n) => n.to_string(),
        Typed::Bool(b) => b.to_string(),
        Typed::Dur(d) => yaml_string(&format_duration(*d)),
        Typed::Mode(m) => format!("\"{m:04o}\""),
    }
}

/// A string as a YAML scalar: plain when every YAML reader takes it as this string (it
/// starts with a letter, `/` or `_`, holds only letters, digits and `_./@+-`, and is no
/// boolean or null word of YAML 1.1 or 1.2), double-quoted otherwise (JSON's escapes are
/// YAML's).
fn yaml_string(s: &str) -> String {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./@+-".contains(c));
    let word = matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    );
    if first_ok && rest_ok && !word {
        s.to_string()
    } else {
        yaml_quoted(s)
    }
}

/// A double-quoted YAML scalar: JSON's escapes, plus `\uXXXX` for the characters YAML
/// does not allow unescaped (DEL, C1 controls but NEL, U+FEFF, U+FFFE, U+FFFF).
fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in json_string(s).chars() {
        let printable = matches!(c,
            '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
            | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}' | '\u{10000}'..);
        if printable {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::parse::parse_operations;
    use crate::checks::spec::CheckSet;

    fn example() -> CheckSet {
        parse_operations(include_str!("../../examples/checks.json"), "checks.json").unwrap()
    }

    fn one(set: &CheckSet, name: &str) -> Check {
        set.get(name).cloned().unwrap()
    }

    #[test]
    fn every_example_check_renders_back_to_itself_in_both_formats() {
        let set = example();
        for (name, check) in set.iter() {
            for format in [FileFormat::Json, FileFormat::Yaml] {
                let text = render_file(name, check, format);
                let back = parse_operations_as(&text, "rendered", format)
                    .unwrap_or_else(|e| panic!("{name} as {format:?}: {e}\n{text}"));
                assert_eq!(back.get(name), Some(check), "{name} as {format:?}:\n{text}");
                assert_eq!(back.len(), 1);
            }
        }
    }

    #[test]
    fn yaml_strings_are_quoted_unless_plain_is_unambiguous() {
        assert_eq!(yaml_string("/etc/hosts"), "/etc/hosts");
        assert_eq!(yaml_string("file_exists"), "file_exists");
        assert_eq!(yaml_string("cron.service"), "cron.service");
        for quoted in [
            "", "yes", "No", "null", "true", "0644", "5s", "1.5", "a b", "a: b", "#x", "-x", "*x",
            "&x", "!x", "x,y", "[x]", "{x}", "é", "'", "\"", "a\nb", "~", "...", "\u{7f}",
            "\u{9f}x", "\u{feff}", "\u{fffe}",
        ] {
            let shown = yaml_string(quoted);
            assert!(shown.starts_with('"'), "{quoted:?} -> {shown}");
            let doc = yaml::parse(&format!("k: {shown}\n")).unwrap();
            let Value::Object(members) = doc.value else {
                panic!("{shown}")
            };
            assert_eq!(
                members[0].value.value,
                Value::String(quoted.into()),
                "{shown}"
            );
        }
    }

    #[test]
    fn adds_to_a_pretty_json_file_keeping_its_text() {
        let set = example();
        let original = include_str!("../../examples/checks.json");
        let check = one(&set, "hosts_file_exists");
        let added = add_to_text(original, "c.json", FileFormat::Json, "new_one", &check).unwrap();
        assert!(added.starts_with(original.trim_end().trim_end_matches('}').trim_end()));
        assert!(
            added.ends_with(
                "  \"new_one\": {\n    \"type\": \"file_exists\",\n    \"path\": \"/etc/hosts\"\n  }\n}\n"
            ),
            "{added}"
        );
        let back = parse_operations(&added, "c.json").unwrap();
        assert_eq!(back.len(), set.len() + 1);
    }

    #[test]
    fn adds_to_one_line_and_empty_json_files() {
        let check = one(&example(), "ssh_listening");
        let text = r#"{"a": {"type": "file_exists", "path": "/"}}"#;
        assert_eq!(
            add_to_text(text, "c.json", FileFormat::Json, "b", &check).unwrap(),
            r#"{"a": {"type": "file_exists", "path": "/"}, "b": {"type": "port_listening", "port": 22}}"#
        );
        for empty in ["", "  \n", "{}", "{ }\n"] {
            assert_eq!(
                add_to_text(empty, "c.json", FileFormat::Json, "b", &check).unwrap(),
                "{\n  \"b\": {\n    \"type\": \"port_listening\",\n    \"port\": 22\n  }\n}\n"
            );
        }
    }

    #[test]
    fn adds_to_yaml_files_keeping_comments_and_indentation() {
        let check = one(&example(), "dns_listening_locally");
        let text =
            "# web hosts\n  a:\n      type: file_exists # the root\n      path: /\n  # more soon";
        let added = add_to_text(text, "c.yaml", FileFormat::Yaml, "dns", &check).unwrap();
        assert_eq!(
            added,
            format!(
                "{text}\n  dns:\n    type: port_listening\n    port: 53\n    proto: udp\n    address: \"127.0.0.1\"\n"
            )
        );
        let flow = "{a: {type: file_exists, path: /}}  # one line\n";
        assert_eq!(
            add_to_text(flow, "c.yaml", FileFormat::Yaml, "dns", &check).unwrap(),
            "{a: {type: file_exists, path: /}, dns: {type: port_listening, port: 53, proto: udp, address: \"127.0.0.1\"}}  # one line\n"
        );
        assert_eq!(
            add_to_text("# nothing yet\n", "c.yaml", FileFormat::Yaml, "dns", &check).unwrap(),
            "# nothing yet\ndns:\n  type: port_listening\n  port: 53\n  proto: udp\n  address: \"127.0.0.1\"\n"
        );
        assert_eq!(
            add_to_text("{}\n", "c.yaml", FileFormat::Yaml, "d", &check).unwrap(),
            "{ d: {type: port_listening, port: 53, proto: udp, address: \"127.0.0.1\"}}\n"
        );
    }

    #[test]
    fn refuses_duplicates_invalid_files_and_layouts_it_cannot_extend() {
        let check = one(&example(), "hosts_file_exists");
        let e = add_to_text(
            "a: {type: file_exists, path: /}\n",
            "c.yaml",
            FileFormat::Yaml,
            "a",
            &check,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.yaml already has a check named \"a\""),
            "{e}"
        );
        let e = add_to_text(
            r#"{"a": {"type": "file_exists", "path": "/"}}"#,
            "c.json",
            FileFormat::Json,
            "a",
            &check,
        )
        .unwrap_err();
        assert!(matches!(e, AddError::Duplicate { .. }), "{e}");
        let e = add_to_text(
            "a:\n  type: file_exist\n  path: /\n",
            "c.yaml",
            FileFormat::Yaml,
            "b",
            &check,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.yaml:2:9: check \"a\": unknown type"),
            "{e}"
        );
        assert!(e.contains("left unchanged"), "{e}");
        let e = add_to_text("{\"a\": ", "c.json", FileFormat::Json, "b", &check).unwrap_err();
        assert!(matches!(e, AddError::Invalid(_)), "{e}");
        // An explicit end of document: text after it would start a second document.
        let e = add_to_text(
            "a: {type: file_exists, path: /}\n...\n",
            "c.yaml",
            FileFormat::Yaml,
            "b",
            &check,
        )
        .unwrap_err();
        match e {
            AddError::Layout { snippet, .. } => {
                assert_eq!(snippet, "b:\n  type: file_exists\n  path: /etc/hosts\n")
            }
            other => panic!("{other}"),
        }
        let full: String = (0..MAX_CHECKS)
            .map(|i| format!("c{i}: {{type: file_exists, path: /}}\n"))
            .collect();
        let e = add_to_text(&full, "c.yaml", FileFormat::Yaml, "b", &check).unwrap_err();
        assert!(matches!(e, AddError::Full { .. }), "{e}");
    }
}
