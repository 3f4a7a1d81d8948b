//! Reading a YAML operations file into the same position-keeping tree that `json.rs`
//! builds ([`Spanned`] values of the JSON data model), so that `parse.rs` applies one set
//! of rules, with `FILE:LINE:COLUMN` errors, to both formats.
//!
//! The events and their positions come from `saphyr-parser` (YAML 1.2); this module turns
//! them into values and refuses what an operations file has no use for, so nothing is
//! read in a way its author did not mean:
//!
//! - plain scalars are resolved with YAML 1.2's core schema: `null`/`~`/empty, `true`/
//!   `false`, integers (decimal, `0o` octal, `0x` hex) and floats become null, booleans
//!   and numbers; everything else, and every quoted or block scalar, is a string (so
//!   `yes` and `no` are strings, and `0644` is the number 644: quote a mode);
//! - the `!!str` tag makes a string; any other tag is refused;
//! - aliases (`*name`) are refused (anchors alone are harmless and ignored), which also
//!   rules out merge keys and alias bombs;
//! - keys must be scalars; their text is the key;
//! - one document only; nesting is limited to [`MAX_DEPTH`] like JSON.
//!
//! Duplicate keys are kept in order here, as `json.rs` does: `parse.rs` reports them.
//! What the values mean is decided there, not here.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};

use super::json::{MAX_DEPTH, Member, Spanned, SyntaxError, Value};

/// One YAML document read into the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    /// The document's value.
    pub root: Spanned,
    /// Where the closing `}` of the root is, when the root is a flow mapping
    /// (`{a: …, b: …}`); `None` for a block mapping or any other value.
    pub root_flow_end: Option<usize>,
}

/// Parses one YAML document holding a value (surrounding comments allowed). An empty
/// file, or one with only comments, is an error, as an empty JSON file is.
pub(crate) fn parse(text: &str) -> Result<Spanned, SyntaxError> {
    match parse_document(text)? {
        Some(doc) => Ok(doc.root),
        None => Err(SyntaxError {
            offset: 0,
            message: "the file is empty; expected a YAML mapping of check names to checks".into(),
        }),
    }
}

/// Parses one YAML document; `None` when the file holds no document or only a null (no
/// content besides comments, `---` and `...`).
pub(crate) fn parse_document(text: &str) -> Result<Option<Document>, SyntaxError> {
    let mut reader = Reader {
        offsets: Offsets::new(text),
        stack: Vec::new(),
        root_flow_end: None,
    };
    let mut parser = Parser::new_from_str(text);
    let mut root: Option<Spanned> = None;
    let mut documents = 0usize;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(e)) => return Err(reader.scan_error(&e)),
        };
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(reader.error(
                        span.start,
                        "a second YAML document ('---'); an operations file is one mapping \
                         of check names to checks",
                    ));
                }
            }
            event => {
                if let Some(value) = reader.event(event, span)? {
                    root = Some(value);
                }
            }
        }
    }
    Ok(root
        .filter(|r| r.value != Value::Null)
        .map(|root| Document {
            root,
            root_flow_end: reader.root_flow_end,
        }))
}

/// One open collection while the tree is built.
enum Frame {
    Sequence {
        offset: usize,
        items: Vec<Spanned>,
    },
    Mapping {
        offset: usize,
        members: Vec<Member>,
        /// The key read, waiting for its value: its text and where it starts.
        key: Option<(String, usize)>,
    },
}

struct Reader<'a> {
    offsets: Offsets<'a>,
    stack: Vec<Frame>,
    root_flow_end: Option<usize>,
}

impl Reader<'_> {
    fn error(&mut self, at: Marker, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset: self.offsets.byte(at.index()),
            message: message.into(),
        }
    }

    fn scan_error(&mut self, e: &ScanError) -> SyntaxError {
        let mut message = e.info().to_string();
        if message.contains("block mapping") || message.contains("block sequence") {
            message
                .push_str(" (check the indentation: fields of a check sit deeper than its name)");
        }
        self.error(*e.marker(), message)
    }

    /// Handles one content event; returns the root value once it is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Spanned>, SyntaxError> {
        let offset = self.offsets.byte(span.start.index());
        let in_key_position = matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }));
        let done = match event {
            Event::Alias(_) => {
                return Err(self.error(
                    span.start,
                    "aliases (*name) are not supported in operations files; write the value out",
                ));
            }
            Event::Scalar(text, style, _anchor, tag) => {
                if in_key_position {
                    if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
                        *key = Some((text.into_owned(), offset));
                    }
                    return Ok(None);
                }
                let value = scalar(text, style, tag.as_deref())
                    .map_err(|message| self.error(span.start, message))?;
                Spanned { offset, value }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if in_key_position {
                    return Err(self.error(
                        span.start,
                        "a key must be a name (a check or field name), not a mapping or sequence",
                    ));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(self.error(
                        span.start,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                self.stack
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping {
                            offset,
                            members: Vec::new(),
                            key: None,
                        }
                    } else {
                        Frame::Sequence {
                            offset,
                            items: Vec::new(),
                        }
                    });
                return Ok(None);
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Sequence { offset, items }) => Spanned {
                    offset,
                    value: Value::Array(items),
                },
                Some(Frame::Mapping {
                    offset: start,
                    members,
                    ..
                }) => {
                    // A flow mapping ends on its `}`; a block mapping's end is empty.
                    if self.stack.is_empty() && span.end.index() > span.start.index() {
                        self.root_flow_end = Some(offset);
                    }
                    Spanned {
                        offset: start,
                        value: Value::Object(members),
                    }
                }
                None => return Err(self.error(span.start, "unbalanced end of a collection")),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => return Ok(None),
        };
        match self.stack.last_mut() {
            None => Ok(Some(done)),
            Some(Frame::Sequence { items, .. }) => {
                items.push(done);
                Ok(None)
            }
            Some(Frame::Mapping { members, key, .. }) => {
                if let Some((key, key_offset)) = key.take() {
                    members.push(Member {
                        key,
                        key_offset,
                        value: done,
                    });
                }
                Ok(None)
            }
        }
    }
}

/// The value of a scalar in value position.
fn scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        return if tag.is_yaml_core_schema() && tag.suffix == "str" {
            Ok(Value::String(text.into_owned()))
        } else {
            Err(format!(
                "the YAML tag {}{} is not supported here; remove it (quote a value to make it a string)",
                shown_handle(&tag.handle),
                tag.suffix
            ))
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.into_owned()));
    }
    Ok(resolve_plain(&text).unwrap_or_else(|| Value::String(text.into_owned())))
}

/// How a tag's handle was written (the parser expands `!!` to the core schema prefix).
fn shown_handle(handle: &str) -> &str {
    if handle == "tag:yaml.org,2002:" {
        "!!"
    } else {
        handle
    }
}

/// A plain scalar's value under YAML 1.2's core schema, or `None` for a string.
fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let radix = |prefix: &str, radix: u32| {
        let digits = text.strip_prefix(prefix)?;
        let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        // Too large for any field: keep the text, which the field's parse then refuses.
        valid.then(|| {
            Value::Number(
                u64::from_str_radix(digits, radix)
                    .map_or_else(|_| text.to_string(), |n| n.to_string()),
            )
        })
    };
    if let Some(number) = radix("0o", 8).or_else(|| radix("0x", 16)) {
        return Some(number);
    }
    is_core_number(text).then(|| Value::Number(text.to_string()))
}

/// The core schema's decimal integers and floats, with the special floats `.inf` and
/// `.nan` (kept as text: no field accepts them, and the field says so).
fn is_core_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        None => digits(mantissa),
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Converts the parser's character indices into byte offsets. Events arrive in source
/// order, so a cursor that moves from the last answer keeps this linear.
struct Offsets<'a> {
    text: &'a str,
    chars: usize,
    bytes: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        Offsets {
            text,
            chars: 0,
            bytes: 0,
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if char_index < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        let rest = self.text.get(self.bytes..).unwrap_or_default();
        let step = char_index - self.chars;
        let advance = rest.char_indices().nth(step).map_or(rest.len(), |(i, _)| i);
        self.chars = char_index;
        self.bytes += advance;
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::json::line_column;

    fn object(v: &Spanned) -> &[Member] {
        match &v.value {
            Value::Object(m) => m,
            other => panic!("expected a mapping, got {other:?}"),
        }
    }

    fn value_of(text: &str) -> Value {
        let doc = parse(&format!("v: {text}\n")).unwrap();
        object(&doc)[0].value.value.clone()
    }

    #[test]
    fn builds_the_json_tree_with_positions() {
        let text = "# checks\nhosts:\n  type: file_exists\n  path: \"/etc/hosts\"\n  args: [a, 'b']\nflow: {type: x}\n";
        let doc = parse(text).unwrap();
        let top = object(&doc);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].key, "hosts");
        assert_eq!(line_column(text, top[0].key_offset), (2, 1));
        let fields = object(&top[0].value);
        assert_eq!(line_column(text, fields[0].key_offset), (3, 3));
        assert_eq!(fields[0].value.value, Value::String("file_exists".into()));
        assert_eq!(line_column(text, fields[1].value.offset), (4, 9));
        assert_eq!(
            fields[2].value.value,
            Value::Array(vec![
                Spanned {
                    offset: text.find("a,").unwrap(),
                    value: Value::String("a".into())
                },
                Spanned {
                    offset: text.find("'b'").unwrap(),
                    value: Value::String("b".into())
                },
            ])
        );
        assert_eq!(line_column(text, top[1].value.offset), (6, 7));
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        assert_eq!(value_of(""), Value::Null);
        assert_eq!(value_of("~"), Value::Null);
        assert_eq!(value_of("True"), Value::Bool(true));
        assert_eq!(value_of("false"), Value::Bool(false));
        // YAML 1.1's booleans are strings in 1.2.
        assert_eq!(value_of("yes"), Value::String("yes".into()));
        assert_eq!(value_of("off"), Value::String("off".into()));
        assert_eq!(value_of("0644"), Value::Number("0644".into()));
        assert_eq!(value_of("-12"), Value::Number("-12".into()));
        assert_eq!(value_of("0o17"), Value::Number("15".into()));
        assert_eq!(value_of("0x1F"), Value::Number("31".into()));
        assert_eq!(value_of("2.5e3"), Value::Number("2.5e3".into()));
        assert_eq!(value_of(".5"), Value::Number(".5".into()));
        assert_eq!(value_of(".inf"), Value::Number(".inf".into()));
        assert_eq!(value_of("1_000"), Value::String("1_000".into()));
        assert_eq!(value_of("1.2.3"), Value::String("1.2.3".into()));
        assert_eq!(value_of("'0644'"), Value::String("0644".into()));
        assert_eq!(value_of("\"true\""), Value::String("true".into()));
        assert_eq!(value_of("!!str 22"), Value::String("22".into()));
        assert_eq!(
            value_of("|\n  two\n  lines"),
            Value::String("two\nlines\n".into())
        );
        assert_eq!(value_of("/etc/hosts"), Value::String("/etc/hosts".into()));
    }

    #[test]
    fn keys_are_their_text_and_duplicates_are_kept_in_order() {
        let doc = parse("200: {a: 1, a: 2}\ntrue: x\n").unwrap();
        let top = object(&doc);
        assert_eq!(top[0].key, "200");
        assert_eq!(top[1].key, "true");
        let keys: Vec<_> = object(&top[0].value)
            .iter()
            .map(|m| m.key.as_str())
            .collect();
        assert_eq!(keys, ["a", "a"]);
    }

    #[test]
    fn refuses_what_an_operations_file_has_no_use_for() {
        let err = |text: &str| {
            let e = parse(text).unwrap_err();
            let (line, column) = line_column(text, e.offset);
            format!("{line}:{column}: {}", e.message)
        };
        assert_eq!(
            err("a: &x {b: 1}\nc: *x\n"),
            "2:4: aliases (*name) are not supported in operations files; write the value out"
        );
        assert!(
            err("a: 1\n---\nb: 2\n").starts_with("2:1: a second YAML document"),
            "{}",
            err("a: 1\n---\nb: 2\n")
        );
        assert_eq!(
            err("? [a]\n: 1\n"),
            "1:3: a key must be a name (a check or field name), not a mapping or sequence"
        );
        assert_eq!(
            err("a: !!int 3\n"),
            "1:4: the YAML tag !!int is not supported here; remove it (quote a value to make it a string)"
        );
        assert!(
            err("a: !custom x\n").contains("the YAML tag !custom"),
            "{}",
            err("a: !custom x\n")
        );
        let e = err("a:\n  b: 1\n c: 2\n");
        assert!(e.starts_with("3:2: "), "{e}");
        assert!(e.contains("indentation"), "{e}");
        assert!(err("a: \"open\n").contains("quoted scalar"));
        assert_eq!(
            err("# nothing\n"),
            "1:1: the file is empty; expected a YAML mapping of check names to checks"
        );
        assert!(err("").contains("empty"));
        assert!(err("---\n...\n").contains("empty"));
    }

    #[test]
    fn positions_count_characters_after_multibyte_text() {
        let text = "é: {ü: x, b: *y}\n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_column(text, e.offset), (1, 14));
        let text = "é: [1\n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_column(text, e.offset), (2, 1));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let text = "[".repeat(10_000);
        assert!(parse(&text).is_err());
        let text = format!("{}x", "- ".repeat(10_000));
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nesting"), "{}", e.message);
    }
}
