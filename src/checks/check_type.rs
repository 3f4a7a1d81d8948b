//! The one trait every check type implements, [`CheckType`], and what it is handed: the
//! [`FieldSpec`]s it declares, the parsed [`Fields`] it is built from, the
//! [`FieldProblem`]s it reports, and the field rules several types share.
//!
//! A type is a struct in its own file under `types/` whose serde form is its wire form;
//! `types/mod.rs` registers it with one line. Parsing JSON, positions in error messages,
//! `expect` and `timeout` are handled once, by the parser and the runner, for every type.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::outcome::{CheckResult, Facts};
use super::run::CheckContext;
use super::spec::MAX_VALUE_BYTES;

/// A check type: its name and fields in the operations file, its rules, and how it runs.
///
/// The implementing struct holds the check's parameters. Its serde form is what travels
/// between nodes (the struct's name is the tag, its fields the body), so a released type
/// keeps its struct name, field names, field order and field types.
pub(crate) trait CheckType:
    Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The `type` value in the operations file, e.g. `"file_exists"`.
    const NAME: &'static str;
    /// What passing means, one line.
    const DOC: &'static str;
    /// The fields this type takes besides the common ones (`type`, `expect`, `timeout`).
    /// The parser refuses any other field, checks each one's JSON type and that the
    /// required ones are present, and lists these in its error messages.
    const FIELDS: &'static [FieldSpec];

    /// Builds the check from fields the parser has already matched against
    /// [`Self::FIELDS`]: every key is known, every value has its declared JSON type, every
    /// required field is present. Conversions that can fail (a number that must fit a
    /// `u16`, a string that must be an IP address) report their problem here.
    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem>;

    /// The fields that, written in an operations file, give back this check through
    /// [`Self::from_fields`]: in the order of [`Self::FIELDS`], leaving out optional
    /// fields that hold their default. Writing checks files (`checks add`) uses it.
    fn to_fields(&self) -> Vec<(&'static str, Typed)>;

    /// Rules the parameters must satisfy, applied after parsing and again to every set
    /// received from a peer (which never went through the parser).
    fn validate(&self) -> Result<(), FieldProblem>;

    /// What passing needs, as facts in the words of [`CheckType::run`]'s `found`
    /// (`mode=0600`, `status=200`): shown beside what was found when the check does not
    /// pass. The runner marks it negated for `"expect": false`.
    fn expected(&self) -> Facts;

    /// Runs the check on this host: the verdict and what was found (the mode, the digest,
    /// the status code, …, as far as it got before an error). The runner applies the
    /// timeout and `expect` and adds [`CheckType::expected`]; blocking work belongs on the
    /// blocking pool ([`super::run::blocking`]) and long loops should stop once
    /// [`CheckContext::expired`].
    fn run(self, ctx: CheckContext) -> impl Future<Output = CheckResult> + Send;
}

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
    /// How the type is named in error messages ("must be a string").
    pub(crate) fn describe(self) -> &'static str {
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

/// A required field.
pub(crate) const fn req(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
    }
}

/// An optional field.
pub(crate) const fn opt(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
    }
}

/// A field value after its JSON type was checked against its [`FieldType`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Typed {
    Str(String),
    List(Vec<String>),
    Int(i64),
    Num(f64),
    Bool(bool),
    Dur(Duration),
    Mode(u32),
}

/// The fields of one check as the parser read them: typed, with where each value starts
/// (for error positions). Accessors return `None` for an absent field.
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    values: Vec<(&'a str, Typed, usize)>,
}

impl<'a> Fields<'a> {
    /// Adds a field read at byte `offset` of the file.
    pub(crate) fn push(&mut self, name: &'a str, value: Typed, offset: usize) {
        self.values.push((name, value, offset));
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Typed> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, t, _)| t)
    }

    /// Where the value of `name` starts in the file.
    pub(crate) fn offset(&self, name: &str) -> Option<usize> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, o)| *o)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Typed::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A required string field; the parser has checked it is present, so absence (a type
    /// that forgot to declare it required) reads as empty and fails validation.
    pub(crate) fn required(&self, name: &str) -> String {
        self.string(name).unwrap_or_default()
    }

    pub(crate) fn list(&self, name: &str) -> Option<Vec<String>> {
        match self.get(name) {
            Some(Typed::List(items)) => Some(items.clone()),
            _ => None,
        }
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Typed::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn number(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some(Typed::Num(n)) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn mode(&self, name: &str) -> Option<u32> {
        match self.get(name) {
            Some(Typed::Mode(m)) => Some(*m),
            _ => None,
        }
    }
}

/// A problem with one field of a check: which field (for positioning) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldProblem {
    /// The field to point at; `None` points at the check's name.
    pub(crate) field: Option<&'static str>,
    /// What is wrong, one line.
    pub(crate) message: String,
}

impl FieldProblem {
    /// A problem with `field`.
    pub(crate) fn on(field: &'static str, message: impl Into<String>) -> Self {
        FieldProblem {
            field: Some(field),
            message: message.into(),
        }
    }

    /// A problem with the check as a whole.
    pub(crate) fn whole(message: impl Into<String>) -> Self {
        FieldProblem {
            field: None,
            message: message.into(),
        }
    }
}

/// Any string field: at most [`MAX_VALUE_BYTES`] and no NUL (paths and arguments cannot
/// carry one).
pub(crate) fn text(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(FieldProblem::on(
            field,
            format!("{field} is longer than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    if value.contains('\0') {
        return Err(FieldProblem::on(
            field,
            format!("{field} contains a NUL character"),
        ));
    }
    Ok(())
}

/// A string field that must not be empty.
pub(crate) fn non_empty_text(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    if value.is_empty() {
        return Err(FieldProblem::on(
            field,
            format!("{field} must not be empty"),
        ));
    }
    text(field, value)
}

/// A user or group name as it appears in `/etc/passwd` or `/etc/group`: no `:` (the
/// field separator) and no newline (the record separator).
pub(crate) fn account_name(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    non_empty_text(field, value)?;
    if value.contains([':', '\n']) {
        return Err(FieldProblem::on(
            field,
            format!("{field} must not contain ':' or a newline"),
        ));
    }
    Ok(())
}
