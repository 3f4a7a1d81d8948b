//! Parsing an operations file into a [`CheckSet`], strictly.
//!
//! A file is rejected at submit time for anything that could not mean what its author
//! intended: unknown type or field, missing or mistyped field, duplicate check or field
//! name, too many checks, a value the check could never use. Every error names the file,
//! line, column and check, and lists the valid types or fields (with a "did you mean"
//! hint when a name is close). The file is JSON or YAML ([`FileFormat`]); positions come
//! from the small spanned JSON reader in `json.rs` or from the YAML reader in `yaml.rs`,
//! which build the same tree, so both formats meet the same rules here. Which fields each
//! type takes comes from the registry, and the semantic rules live with each type (and
//! `spec.rs` for the common fields) so sets received from peers are held to the same
//! rules.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::check_type::{FieldProblem, FieldSpec, FieldType, Fields, Typed};
use super::duration::parse_duration;
use super::json::{self, Member, Spanned, Value};
use super::registry::{CHECK_TYPES, COMMON_FIELDS, TypeInfo, check_type};
use super::spec::{Check, CheckSet, MAX_ARGS, MAX_CHECKS, MAX_FILE_BYTES, SpecError, name_problem};
use super::yaml;

/// The layout of an operations file: the same checks, written as JSON or as YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// A JSON object of check names to checks.
    Json,
    /// A YAML mapping of check names to checks.
    Yaml,
}

impl FileFormat {
    /// The format a file's name says: `.yaml` or `.yml` (any case) is YAML, any other
    /// name JSON.
    pub fn of_path(path: &Path) -> FileFormat {
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml {
            FileFormat::Yaml
        } else {
            FileFormat::Json
        }
    }

    /// The format of text that has no name (standard input): JSON when its first
    /// character other than whitespace (or a byte order mark) is `{`, YAML otherwise.
    pub fn sniff(text: &str) -> FileFormat {
        let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if start.starts_with('{') {
            FileFormat::Json
        } else {
            FileFormat::Yaml
        }
    }

    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Json => "JSON",
            FileFormat::Yaml => "YAML",
        }
    }
}

/// Reads and parses an operations file, JSON or YAML by its name ([`FileFormat::of_path`]).
/// Errors are prefixed with the path.
pub fn load_operations_file(path: &Path) -> Result<CheckSet, SpecError> {
    let label = path.display().to_string();
    let text = read_operations_file(path)?;
    parse_operations_as(&text, &label, FileFormat::of_path(path))
}

/// The text of an operations file, refused if it is larger than [`MAX_FILE_BYTES`] or
/// not UTF-8. Errors are prefixed with the path.
pub fn read_operations_file(path: &Path) -> Result<String, SpecError> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| SpecError::Read {
        path: label.clone(),
        error,
    })?;
    read_operations(file, &label)
}

/// The text of an operations file read from `reader` (a file, standard input), refused
/// if it is larger than [`MAX_FILE_BYTES`] or not UTF-8. `label` names it in errors.
pub fn read_operations(reader: impl Read, label: &str) -> Result<String, SpecError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| SpecError::Read {
            path: label.into(),
            error,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            file: label.into(),
            limit: MAX_FILE_BYTES,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(e.as_bytes().get(..valid).unwrap_or_default());
            let (line, column) = json::line_column(&prefix, prefix.len());
            Err(SpecError::Syntax {
                file: label.into(),
                line,
                column,
                message: "the file is not valid UTF-8".into(),
            })
        }
    }
}

/// Parses the text of a JSON operations file. `file_label` names it in error messages.
pub fn parse_operations(text: &str, file_label: &str) -> Result<CheckSet, SpecError> {
    parse_operations_as(text, file_label, FileFormat::Json)
}

/// Parses the text of an operations file in `format`. `file_label` names it in error
/// messages.
pub fn parse_operations_as(
    text: &str,
    file_label: &str,
    format: FileFormat,
) -> Result<CheckSet, SpecError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            file: file_label.into(),
            limit: MAX_FILE_BYTES,
        });
    }
    let at = |offset: usize, message: String| {
        let (line, column) = json::line_column(text, offset);
        SpecError::Syntax {
            file: file_label.into(),
            line,
            column,
            message,
        }
    };
    let doc = match format {
        FileFormat::Json => json::parse(text),
        FileFormat::Yaml => yaml::parse(text),
    }
    .map_err(|e| at(e.offset, e.message))?;
    let Value::Object(members) = &doc.value else {
        let example = match format {
            FileFormat::Json => {
                "a JSON object mapping check names to checks, e.g. \
                 {\"hosts\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}"
            }
            FileFormat::Yaml => {
                "a YAML mapping of check names to checks, e.g. \
                 `hosts: {type: file_exists, path: /etc/hosts}`"
            }
        };
        return Err(at(
            doc.offset,
            format!(
                "the operations file must be {example}; got {}",
                doc.value.type_name()
            ),
        ));
    };
    if members.is_empty() {
        return Err(at(doc.offset, "the operations file has no checks".into()));
    }
    if members.len() > MAX_CHECKS {
        return Err(at(
            doc.offset,
            format!(
                "the operations file has {} checks; the limit is {MAX_CHECKS} per operation",
                members.len()
            ),
        ));
    }
    let mut checks = BTreeMap::new();
    for member in members {
        let fail = |offset: usize, message: String| {
            let (line, column) = json::line_column(text, offset);
            SpecError::InvalidCheck {
                file: file_label.into(),
                line,
                column,
                name: member.key.clone(),
                message,
            }
        };
        if let Some(message) = name_problem(&member.key) {
            return Err(fail(member.key_offset, message));
        }
        if checks.contains_key(&member.key) {
            return Err(fail(
                member.key_offset,
                "duplicate check name; each check needs its own name".into(),
            ));
        }
        let check =
            parse_check(member, format).map_err(|(offset, message)| fail(offset, message))?;
        checks.insert(member.key.clone(), check);
    }
    Ok(CheckSet { checks })
}

/// Parses one check object; errors carry the byte offset to report.
fn parse_check(member: &Member, format: FileFormat) -> Result<Check, (usize, String)> {
    let Value::Object(items) = &member.value.value else {
        let example = match format {
            FileFormat::Json => {
                "an object such as {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}"
            }
            FileFormat::Yaml => "a mapping such as `{type: file_exists, path: /etc/hosts}`",
        };
        return Err((
            member.value.offset,
            format!(
                "a check must be {example}; got {}",
                member.value.value.type_name()
            ),
        ));
    };
    for (i, item) in items.iter().enumerate() {
        if items.iter().take(i).any(|earlier| earlier.key == item.key) {
            return Err((
                item.key_offset,
                format!("field \"{}\" is given twice", item.key),
            ));
        }
    }
    let type_item = items.iter().find(|m| m.key == "type").ok_or_else(|| {
        (
            member.key_offset,
            format!("missing field \"type\"; valid types: {}", type_list()),
        )
    })?;
    let Value::String(type_name) = &type_item.value.value else {
        return Err((
            type_item.value.offset,
            format!(
                "field \"type\" must be a string, got {}; valid types: {}",
                type_item.value.value.type_name(),
                type_list()
            ),
        ));
    };
    let Some(ty) = check_type(type_name) else {
        let hint = suggest(type_name, CHECK_TYPES.iter().map(|t| t.name))
            .map(|s| format!("did you mean \"{s}\"? "))
            .unwrap_or_default();
        return Err((
            type_item.value.offset,
            format!(
                "unknown type \"{type_name}\"; {hint}valid types: {}",
                type_list()
            ),
        ));
    };
    let specs = || ty.fields.iter().chain(COMMON_FIELDS);
    let mut fields = Fields::default();
    for item in items {
        let Some(spec) = specs().find(|f| f.name == item.key) else {
            let hint = suggest(&item.key, specs().map(|f| f.name))
                .map(|s| format!("did you mean \"{s}\"? "))
                .unwrap_or_default();
            return Err((
                item.key_offset,
                format!(
                    "unknown field \"{}\" for type {}; {hint}{}",
                    item.key,
                    ty.name,
                    field_list(ty)
                ),
            ));
        };
        let typed = typed_value(spec, &item.value, format).map_err(|m| (item.value.offset, m))?;
        fields.push(spec.name, typed, item.value.offset);
    }
    if let Some(missing) = specs().find(|f| f.required && fields.get(f.name).is_none()) {
        return Err((
            member.key_offset,
            format!(
                "missing field \"{}\" for type {}; {}",
                missing.name,
                ty.name,
                field_list(ty)
            ),
        ));
    }
    let at_field = |p: FieldProblem| {
        let offset = p
            .field
            .and_then(|f| fields.offset(f))
            .unwrap_or(member.key_offset);
        (offset, p.message)
    };
    let kind = (ty.build)(&fields).map_err(at_field)?;
    let check = Check {
        kind,
        expect: !matches!(fields.get("expect"), Some(Typed::Bool(false))),
        timeout: match fields.get("timeout") {
            Some(Typed::Dur(d)) => Some(*d),
            _ => None,
        },
    };
    check.problem().map_err(at_field)?;
    Ok(check)
}

fn typed_value(spec: &FieldSpec, value: &Spanned, format: FileFormat) -> Result<Typed, String> {
    let wrong = || {
        // YAML reads an unquoted 0644, 1 or true as a number or boolean.
        let stringly = matches!(
            spec.ty,
            FieldType::String | FieldType::Duration | FieldType::OctalMode
        );
        let unquoted = matches!(value.value, Value::Number(_) | Value::Bool(_));
        let hint = if format == FileFormat::Yaml && stringly && unquoted {
            " (put the value in quotes to make it a string)"
        } else {
            ""
        };
        format!(
            "field \"{}\" must be {}, got {}{hint}",
            spec.name,
            spec.ty.describe(),
            value.value.type_name()
        )
    };
    match (spec.ty, &value.value) {
        (FieldType::String, Value::String(s)) => Ok(Typed::Str(s.clone())),
        (FieldType::StringList, Value::Array(items)) => {
            if items.len() > MAX_ARGS {
                return Err(format!(
                    "field \"{}\" has {} entries; the limit is {MAX_ARGS}",
                    spec.name,
                    items.len()
                ));
            }
            items
                .iter()
                .map(|item| match &item.value {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "field \"{}\" must contain only strings, found {}",
                        spec.name,
                        other.type_name()
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Typed::List)
        }
        (FieldType::Integer, Value::Number(raw)) => {
            raw.parse::<i64>().map(Typed::Int).map_err(|_| {
                format!(
                    "field \"{}\" must be a whole number within range, got {raw}",
                    spec.name
                )
            })
        }
        (FieldType::Number, Value::Number(raw)) => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Typed::Num)
            .ok_or_else(|| format!("field \"{}\" is not a usable number: {raw}", spec.name)),
        (FieldType::Boolean, Value::Bool(b)) => Ok(Typed::Bool(*b)),
        (FieldType::Duration, Value::String(s)) => parse_duration(s)
            .map(Typed::Dur)
            .map_err(|e| format!("field \"{}\": {e}", spec.name)),
        (FieldType::OctalMode, Value::String(s)) => {
            let valid = (1..=5).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
            let mode = u32::from_str_radix(s, 8).ok().filter(|_| valid);
            mode.map(Typed::Mode).ok_or_else(|| {
                format!(
                    "field \"{}\" must be octal permission bits such as \"0644\" or \"4755\", got {s:?}",
                    spec.name
                )
            })
        }
        _ => Err(wrong()),
    }
}

fn type_list() -> String {
    CHECK_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_list(ty: &TypeInfo) -> String {
    let names = |required: bool| {
        ty.fields
            .iter()
            .chain(COMMON_FIELDS)
            .filter(|f| f.required == required)
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} takes fields: {} (required); {} (optional)",
        ty.name,
        names(true),
        names(false)
    )
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
fn suggest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&given, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute =
                previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::spec::{CheckKind, MAX_NAME_BYTES};
    use crate::checks::types::port_listening::Proto;
    use crate::checks::types::{Command, FileContains, FileHash, FileMode, PortListening};
    use std::time::Duration;

    fn parse(text: &str) -> Result<CheckSet, SpecError> {
        parse_operations(text, "ops.json")
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(set) => panic!("expected an error for {text}, got {set:?}"),
            Err(e) => e.to_string(),
        }
    }
    #[test]
    fn seed_files_keep_working() {
        let set = parse(
            r#"{"check_virus_file_exists": {"type": "file_exists", "path": "/tmp/virus"},
                "check_etc_hosts_has_4488": {"type": "file_contains", "path": "/etc/hosts", "check": "4488"}}"#,
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        let names: Vec<_> = set.names().collect();
        assert_eq!(
            names,
            ["check_etc_hosts_has_4488", "check_virus_file_exists"]
        );
        let check = set.get("check_etc_hosts_has_4488").unwrap();
        assert_eq!(
            check.kind,
            CheckKind::FileContains(FileContains {
                path: "/etc/hosts".into(),
                check: "4488".into()
            })
        );
        assert!(check.expect);
        assert_eq!(check.timeout, None);
        assert!(set.validate().is_ok());
        assert!(!set.uses_command());
    }

    #[test]
    fn unknown_type_lists_valid_types_and_a_suggestion() {
        let text = "{\n  \"x\": {\"type\": \"file_exist\", \"path\": \"/\"}\n}";
        let e = error(text);
        assert!(
            e.starts_with("ops.json:2:17: check \"x\": unknown type \"file_exist\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"file_exists\""), "{e}");
        for ty in CHECK_TYPES {
            assert!(e.contains(ty.name), "{e} lacks {}", ty.name);
        }
    }

    #[test]
    fn missing_and_non_string_type_are_reported() {
        let e = error("{\"x\": {\"path\": \"/\"}}");
        assert!(
            e.starts_with("ops.json:1:2: check \"x\": missing field \"type\""),
            "{e}"
        );
        assert!(e.contains("file_exists"), "{e}");
        let e = error("{\"x\": {\"type\": 3}}");
        assert!(
            e.contains("field \"type\" must be a string, got a number"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_lists_valid_fields() {
        let text = "{\"x\": {\"type\": \"file_exists\",\n \"paht\": \"/\"}}";
        let e = error(text);
        assert!(
            e.starts_with("ops.json:2:2: check \"x\": unknown field \"paht\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"path\""), "{e}");
        assert!(e.contains("path, type (required)"), "{e}");
        assert!(e.contains("expect, timeout (optional)"), "{e}");
        // Fields the type does not take are refused, and keys are case-sensitive.
        let e = error(r#"{"x": {"type": "file_exists", "path": "/", "check": "y"}}"#);
        assert!(
            e.contains("unknown field \"check\" for type file_exists"),
            "{e}"
        );
        let e = error(r#"{"x": {"TYPE": "file_exists", "path": "/"}}"#);
        assert!(e.contains("missing field \"type\""), "{e}");
    }

    #[test]
    fn missing_field_points_at_the_check_name() {
        let e = error("{\n\"hosts\": {\"type\": \"file_contains\", \"path\": \"/etc/hosts\"}}");
        assert!(
            e.starts_with("ops.json:2:1: check \"hosts\": missing field \"check\""),
            "{e}"
        );
        assert!(e.contains("path, check, type (required)"), "{e}");
    }

    #[test]
    fn wrong_value_types_are_reported_at_the_value() {
        let e = error(r#"{"x": {"type": "file_exists", "path": 5}}"#);
        assert!(e.starts_with("ops.json:1:39: check \"x\""), "{e}");
        assert!(
            e.contains("field \"path\" must be a string, got a number"),
            "{e}"
        );
        let e = error(r#"{"x": {"type": "port_listening", "port": "22"}}"#);
        assert!(
            e.contains("field \"port\" must be an integer, got a string"),
            "{e}"
        );
        let e = error(r#"{"x": {"type": "port_listening", "port": 70000}}"#);
        assert!(e.contains("port must be between 1 and 65535"), "{e}");
        let e = error(r#"{"x": {"type": "port_listening", "port": 1.5}}"#);
        assert!(e.contains("whole number"), "{e}");
        let e = error(r#"{"x": {"type": "file_exists", "path": "/", "expect": "no"}}"#);
        assert!(e.contains("field \"expect\" must be true or false"), "{e}");
        let e = error(r#"{"x": {"type": "command", "command": "true", "args": ["a", 1]}}"#);
        assert!(e.contains("only strings"), "{e}");
        let e = error(r#"{"x": "file_exists"}"#);
        assert!(e.contains("a check must be an object"), "{e}");
    }

    #[test]
    fn duplicate_names_and_fields_are_refused() {
        let e = error(
            "{\"a\": {\"type\": \"file_exists\", \"path\": \"/\"},\n \"a\": {\"type\": \"file_exists\", \"path\": \"/x\"}}",
        );
        assert!(
            e.starts_with("ops.json:2:2: check \"a\": duplicate check name"),
            "{e}"
        );
        let e = error(r#"{"a": {"type": "file_exists", "path": "/", "path": "/x"}}"#);
        assert!(e.contains("field \"path\" is given twice"), "{e}");
    }

    #[test]
    fn whole_file_problems_are_refused() {
        assert!(error("{}").contains("ops.json:1:1: the operations file has no checks"));
        assert!(error("null").contains("must be a JSON object"));
        assert!(error("[]").contains("must be a JSON object"));
        let e = error("{\"a\": {\"type\": \"file_exists\",\n \"path\": \"/\"");
        assert!(
            e.starts_with("ops.json:2:13: unexpected end of file"),
            "{e}"
        );
        let many: Vec<String> = (0..=MAX_CHECKS)
            .map(|i| format!("\"c{i}\": {{\"type\": \"file_exists\", \"path\": \"/\"}}"))
            .collect();
        let e = error(&format!("{{{}}}", many.join(",")));
        assert!(e.contains(&format!("the limit is {MAX_CHECKS}")), "{e}");
        let big = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_FILE_BYTES as usize));
        assert!(error(&big).contains("larger than the limit"));
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let e = error(&format!(
            "{{\"{long_name}\": {{\"type\": \"file_exists\", \"path\": \"/\"}}}}"
        ));
        assert!(e.contains("longer than"), "{e}");
        let e = error(r#"{"a\nb": {"type": "file_exists", "path": "/"}}"#);
        assert!(e.contains("control characters"), "{e}");
    }

    #[test]
    fn semantic_rules_are_enforced_at_submit() {
        let cases = [
            (
                r#"{"type": "file_contains", "path": "/x", "check": "a\nb"}"#,
                "newline",
            ),
            (
                r#"{"type": "file_contains", "path": "/x", "check": ""}"#,
                "check must not be empty",
            ),
            (
                r#"{"type": "file_exists", "path": ""}"#,
                "path must not be empty",
            ),
            (
                r#"{"type": "file_matches", "path": "/x", "pattern": "a("}"#,
                "regex",
            ),
            (
                r#"{"type": "file_hash", "path": "/x", "sha256": "abc"}"#,
                "64 hex digits",
            ),
            (
                r#"{"type": "file_mode", "path": "/x", "mode": "0999"}"#,
                "octal",
            ),
            (
                r#"{"type": "file_mode", "path": "/x", "mode": "17777"}"#,
                "beyond 7777",
            ),
            (
                r#"{"type": "process_running"}"#,
                "needs path, check or both",
            ),
            (
                r#"{"type": "port_listening", "port": 0}"#,
                "between 1 and 65535",
            ),
            (
                r#"{"type": "port_listening", "port": 22, "proto": "sctp"}"#,
                "\"tcp\" or \"udp\"",
            ),
            (
                r#"{"type": "port_listening", "port": 22, "address": "localhost"}"#,
                "IP address",
            ),
            (
                r#"{"type": "http_status", "url": "ftp://x", "status": 200}"#,
                "http://",
            ),
            (
                r#"{"type": "http_status", "url": "http://x", "status": 99}"#,
                "between 100 and 599",
            ),
            (
                r#"{"type": "disk_free", "path": "/", "min_percent": 101}"#,
                "between 0 and 100",
            ),
            (
                r#"{"type": "service_active", "name": "--all"}"#,
                "unit name",
            ),
            (r#"{"type": "user_exists", "name": "a:b"}"#, "':'"),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "0s"}"#,
                "above zero",
            ),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "11m"}"#,
                "above the limit of 10m",
            ),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "5"}"#,
                "invalid duration",
            ),
        ];
        for (check, expected) in cases {
            let e = error(&format!("{{\"c\": {check}}}"));
            assert!(e.contains(expected), "{check}: {e}");
            assert!(e.starts_with("ops.json:1:"), "{check}: {e}");
        }
    }

    #[test]
    fn bad_regex_error_includes_the_regex_message_at_the_pattern() {
        let e = error(r#"{"c": {"type": "file_matches", "path": "/x", "pattern": "a(b"}}"#);
        assert!(e.starts_with("ops.json:1:57: check \"c\""), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
    }

    #[test]
    fn expect_timeout_and_defaults_are_parsed() {
        let set = parse(
            r#"{"a": {"type": "file_exists", "path": "/", "expect": false, "timeout": "500ms"},
                "b": {"type": "port_listening", "port": 53, "proto": "udp", "address": "::1"},
                "c": {"type": "command", "command": "true"},
                "d": {"type": "file_mode", "path": "/", "mode": "755"},
                "e": {"type": "file_hash", "path": "/x", "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}"#,
        )
        .unwrap();
        let a = set.get("a").unwrap();
        assert!(!a.expect);
        assert_eq!(a.timeout, Some(Duration::from_millis(500)));
        assert_eq!(
            set.get("b").unwrap().kind,
            CheckKind::PortListening(PortListening {
                port: 53,
                proto: Proto::Udp,
                address: Some("::1".parse().unwrap())
            })
        );
        assert_eq!(
            set.get("c").unwrap().kind,
            CheckKind::Command(Command {
                command: "true".into(),
                args: vec![],
                exit_status: 0,
                stdout_contains: None
            })
        );
        assert!(matches!(
            set.get("d").unwrap().kind,
            CheckKind::FileMode(FileMode { mode: 0o755, .. })
        ));
        assert!(matches!(&set.get("e").unwrap().kind,
            CheckKind::FileHash(FileHash { sha256, .. }) if sha256.starts_with("e3b0c442")));
        assert!(set.uses_command());
    }

    #[test]
    fn example_ops_file_is_the_seeds() {
        let set = parse(include_str!("../../examples/ops.json")).unwrap();
        let names: Vec<_> = set.names().collect();
        assert_eq!(
            names,
            ["check_etc_hosts_has_4488", "check_virus_file_exists"]
        );
    }

    #[test]
    fn load_reports_the_path_when_reading_fails() {
        let e = load_operations_file(Path::new("/nonexistent/werify-ops.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("reading /nonexistent/werify-ops.json: "),
            "{e}"
        );
        let set = load_operations_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/ops.json"
        )))
        .unwrap();
        assert_eq!(set.len(), 2);
    }

    fn yaml_error(text: &str) -> String {
        match parse_operations_as(text, "ops.yaml", FileFormat::Yaml) {
            Ok(set) => panic!("expected an error for {text}, got {set:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn yaml_example_is_the_json_example() {
        let json = parse(include_str!("../../examples/checks.json")).unwrap();
        let yaml = parse_operations_as(
            include_str!("../../examples/checks.yaml"),
            "checks.yaml",
            FileFormat::Yaml,
        )
        .unwrap();
        assert_eq!(yaml, json);
    }

    #[test]
    fn yaml_files_meet_the_same_rules_with_positions() {
        assert_eq!(
            yaml_error("hosts:\n  type: file_exists\n  paht: /etc/hosts\n"),
            "ops.yaml:3:3: check \"hosts\": unknown field \"paht\" for type file_exists; \
             did you mean \"path\"? file_exists takes fields: path, type (required); \
             expect, timeout (optional)"
        );
        assert_eq!(
            yaml_error("a:\n  type: file_exists\n  path: /\n  path: /x\n"),
            "ops.yaml:4:3: check \"a\": field \"path\" is given twice"
        );
        assert_eq!(
            yaml_error(
                "a: {type: file_exists, path: /}\nb: {type: file_exists, path: /}\na: {type: file_exists, path: /x}\n"
            ),
            "ops.yaml:3:1: check \"a\": duplicate check name; each check needs its own name"
        );
        assert_eq!(
            yaml_error("m:\n  type: file_mode\n  path: /etc/passwd\n  mode: 0644\n"),
            "ops.yaml:4:9: check \"m\": field \"mode\" must be an octal mode string such as \
             \"0644\", got a number (put the value in quotes to make it a string)"
        );
        assert_eq!(
            yaml_error("p:\n  type: port_listening\n  port: \"22\"\n"),
            "ops.yaml:3:9: check \"p\": field \"port\" must be an integer, got a string"
        );
        assert_eq!(
            yaml_error("f:\n  type: file_exists\n  path: /\n  expect: no\n"),
            "ops.yaml:4:11: check \"f\": field \"expect\" must be true or false, got a string"
        );
        assert_eq!(
            yaml_error("k:\n  type: kernel_param\n  name: net.ipv4.ip_forward\n  value:\n"),
            "ops.yaml:4:8: check \"k\": field \"value\" must be a string, got null"
        );
        assert!(yaml_error("- a\n- b\n").starts_with(
            "ops.yaml:1:1: the operations file must be a YAML mapping of check names to checks"
        ));
        assert!(yaml_error("a: file_exists\n").contains("a check must be a mapping such as"));
        assert!(yaml_error("{}\n").contains("ops.yaml:1:1: the operations file has no checks"));
    }

    #[test]
    fn formats_by_name_and_by_content() {
        assert_eq!(
            FileFormat::of_path(Path::new("a/ops.yaml")),
            FileFormat::Yaml
        );
        assert_eq!(FileFormat::of_path(Path::new("ops.YML")), FileFormat::Yaml);
        assert_eq!(FileFormat::of_path(Path::new("ops.json")), FileFormat::Json);
        assert_eq!(FileFormat::of_path(Path::new("ops")), FileFormat::Json);
        assert_eq!(FileFormat::sniff("\u{feff} \n{\"a\": 1}"), FileFormat::Json);
        assert_eq!(FileFormat::sniff("# c\na: {}"), FileFormat::Yaml);
        assert_eq!(FileFormat::sniff(""), FileFormat::Yaml);
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert_eq!(
            suggest("file_exist", CHECK_TYPES.iter().map(|t| t.name)),
            Some("file_exists")
        );
        assert_eq!(
            suggest("Path", ["path", "expect"].into_iter()),
            Some("path")
        );
        assert_eq!(
            suggest("zzzzzzzz", CHECK_TYPES.iter().map(|t| t.name)),
            None
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
