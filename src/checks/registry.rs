//! The registry of check types: each `type` name, what passing means, and the fields it
//! takes. The parser (`parse.rs`) drives its validation and its error messages from this
//! table; meta-tests below keep it sorted, unique, documented and fully exemplified.

/// The JSON type a field must have in the operations file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON array of strings.
    StringList,
    /// A JSON integer.
    Integer,
    /// A JSON number (integer or fraction).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A string such as `"500ms"`, `"5s"`, `"1m"`.
    Duration,
    /// A string of octal digits such as `"0644"`.
    OctalMode,
}

impl FieldType {
    pub(super) fn describe(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::StringList => "an array of strings",
            FieldType::Integer => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "true or false",
            FieldType::Duration => "a duration string such as \"5s\"",
            FieldType::OctalMode => "an octal mode string such as \"0644\"",
        }
    }
}

/// One field a check type accepts.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// Key in the check's JSON object.
    pub name: &'static str,
    /// Expected JSON type.
    pub ty: FieldType,
    /// Whether the field must be present.
    pub required: bool,
}

/// A check type as written in the `type` field, with its fields and a one-line doc.
#[derive(Clone, Copy, Debug)]
pub struct CheckType {
    /// The `type` value, e.g. `"file_exists"`.
    pub name: &'static str,
    /// What passing means, one line.
    pub doc: &'static str,
    /// Type-specific fields (the [`COMMON_FIELDS`] are accepted too).
    pub fields: &'static [FieldSpec],
}

const fn req(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
    }
}

/// Fields every check accepts: `type` (required), `expect` and `timeout`.
pub const COMMON_FIELDS: &[FieldSpec] = &[
    req("type", FieldType::String),
    opt("expect", FieldType::Boolean),
    opt("timeout", FieldType::Duration),
];

/// Every check type, sorted by name.
pub const CHECK_TYPES: &[CheckType] = &[
    CheckType {
        name: "command",
        doc: "runs a program (no shell); passes when it exits with exit_status and its stdout contains stdout_contains",
        fields: &[
            req("command", FieldType::String),
            opt("args", FieldType::StringList),
            opt("exit_status", FieldType::Integer),
            opt("stdout_contains", FieldType::String),
        ],
    },
    CheckType {
        name: "disk_free",
        doc: "passes when the filesystem holding path has at least min_percent % available",
        fields: &[
            req("path", FieldType::String),
            req("min_percent", FieldType::Number),
        ],
    },
    CheckType {
        name: "file_contains",
        doc: "passes when a line of the regular file at path contains check (case-sensitive)",
        fields: &[
            req("path", FieldType::String),
            req("check", FieldType::String),
        ],
    },
    CheckType {
        name: "file_exists",
        doc: "passes when path exists (symlinks followed)",
        fields: &[req("path", FieldType::String)],
    },
    CheckType {
        name: "file_hash",
        doc: "passes when the SHA-256 of the regular file at path equals sha256",
        fields: &[
            req("path", FieldType::String),
            req("sha256", FieldType::String),
        ],
    },
    CheckType {
        name: "file_matches",
        doc: "passes when a line of the regular file at path matches the regex pattern",
        fields: &[
            req("path", FieldType::String),
            req("pattern", FieldType::String),
        ],
    },
    CheckType {
        name: "file_mode",
        doc: "passes when path has permission bits mode (and owner and group, when given)",
        fields: &[
            req("path", FieldType::String),
            req("mode", FieldType::OctalMode),
            opt("owner", FieldType::String),
            opt("group", FieldType::String),
        ],
    },
    CheckType {
        name: "http_status",
        doc: "passes when a GET of url answers with status (redirects not followed)",
        fields: &[
            req("url", FieldType::String),
            req("status", FieldType::Integer),
        ],
    },
    CheckType {
        name: "port_listening",
        doc: "passes when a local tcp (default) or udp socket listens on port (and address)",
        fields: &[
            req("port", FieldType::Integer),
            opt("proto", FieldType::String),
            opt("address", FieldType::String),
        ],
    },
    CheckType {
        name: "process_running",
        doc: "passes when a process matches path (executable or argv[0]) and/or check (its name)",
        fields: &[
            opt("path", FieldType::String),
            opt("check", FieldType::String),
        ],
    },
    CheckType {
        name: "service_active",
        doc: "passes when `systemctl is-active name` reports the unit active",
        fields: &[req("name", FieldType::String)],
    },
    CheckType {
        name: "user_exists",
        doc: "passes when /etc/passwd has a user called name",
        fields: &[req("name", FieldType::String)],
    },
];

/// Looks up a check type by its exact (case-sensitive) name.
pub fn check_type(name: &str) -> Option<&'static CheckType> {
    CHECK_TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::parse::parse_operations;

    fn parse(text: &str) -> Result<crate::checks::CheckSet, crate::checks::SpecError> {
        parse_operations(text, "ops.json")
    }

    #[test]
    fn every_registered_type_is_documented_unique_and_in_the_example() {
        let mut names: Vec<_> = CHECK_TYPES.iter().map(|t| t.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "CHECK_TYPES must stay sorted");
        names.dedup();
        assert_eq!(names.len(), CHECK_TYPES.len(), "duplicate type name");
        for ty in CHECK_TYPES {
            assert!(!ty.doc.is_empty(), "{} has no doc", ty.name);
            for field in ty.fields {
                assert!(
                    COMMON_FIELDS.iter().all(|c| c.name != field.name),
                    "{} redefines common field {}",
                    ty.name,
                    field.name
                );
            }
        }
        let example = parse(include_str!("../../examples/checks.json")).unwrap();
        let mut used: Vec<_> = example.iter().map(|(_, c)| c.kind.type_name()).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, sorted, "examples/checks.json must show every type");
    }
}
