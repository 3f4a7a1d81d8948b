//! A small JSON reader that remembers where every value and key starts, so the
//! operations-file parser can report `FILE:LINE:COLUMN` for a bad check and catch
//! duplicate keys (which `serde_json` silently merges, last one winning).
//!
//! It reads one document from a `&str` that the caller has already size-capped; nesting
//! is limited to [`MAX_DEPTH`] so hostile input cannot exhaust the stack. What the values
//! mean is not decided here: that is `spec.rs`'s job.

/// Deepest nesting of arrays and objects accepted. An operations file needs three levels.
pub(crate) const MAX_DEPTH: usize = 32;

/// A JSON value together with the byte offset in the source where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    /// Byte offset of the value's first character in the source text.
    pub offset: usize,
    /// The value itself.
    pub value: Value,
}

/// One `"key": value` pair of an object, in source order (duplicates kept).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    /// The decoded key.
    pub key: String,
    /// Byte offset of the key's opening quote.
    pub key_offset: usize,
    /// The value after the colon.
    pub value: Spanned,
}

/// A parsed JSON value. Numbers are kept as their source text so the caller can decide
/// whether it wants an integer or a float and report overflow precisely.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Spanned>),
    Object(Vec<Member>),
}

impl Value {
    /// The JSON type name, for messages such as "must be a string, got a number".
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// Malformed JSON: what was wrong and where (byte offset).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    /// Byte offset where the problem was noticed.
    pub offset: usize,
    /// Lowercase description, e.g. "expected ',' or '}' after an object member".
    pub message: String,
}

/// Converts a byte offset into a 1-based (line, column) pair; columns count characters.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Offsets always come from the parser and sit on character boundaries; be defensive
    // anyway so a bad offset can never panic.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Parses one JSON document (surrounding whitespace allowed, a leading UTF-8 BOM skipped).
pub(crate) fn parse(text: &str) -> Result<Spanned, SyntaxError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    if text.starts_with('\u{feff}') {
        parser.pos = '\u{feff}'.len_utf8();
    }
    parser.skip_whitespace();
    if parser.pos >= parser.bytes.len() {
        return Err(parser.error("the file is empty; expected a JSON object"));
    }
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error("unexpected content after the end of the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &str) -> SyntaxError {
        match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
            None => self.error(format!("unexpected end of file; expected {expected}")),
            Some(c) => self.error(format!("unexpected character {c:?}; expected {expected}")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, SyntaxError> {
        let offset = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            _ => return Err(self.unexpected("a JSON value")),
        };
        Ok(Spanned { offset, value })
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected("a JSON value"))
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, SyntaxError> {
        if depth >= MAX_DEPTH {
            Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")))
        } else {
            Ok(depth + 1)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a string key in double quotes"));
            }
            let key_offset = self.pos;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':' after an object key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push(Member {
                key,
                key_offset,
                value,
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected("',' or '}' after an object member")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']' after an array element")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        let raw = self.text.get(start..self.pos).unwrap_or_default();
        Ok(Value::Number(raw.to_owned()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the run of plain characters up to the next quote, backslash or control.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The run ends on an ASCII byte or at the end, so it is a char boundary.
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.error("unterminated string; expected a closing '\"'")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => {
                    return Err(self.error(
                        "control character inside a string; write it as an escape such as \\n",
                    ));
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                return self.unicode_escape();
            }
            _ => {
                return Err(
                    self.unexpected("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
                );
            }
        };
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        let value = u32::from_str_radix(digits, 16)
            .map_err(|_| self.error("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(value)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(self.error("unpaired surrogate in \\u escape"));
            }
            self.pos += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.error("unpaired surrogate in \\u escape"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate in \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: &Spanned) -> &[Member] {
        match &v.value {
            Value::Object(m) => m,
            other => panic!("expected object, got {other:?}"),
        }
    }

    #[test]
    fn parses_nested_values_with_offsets() {
        let text =
            "{\n  \"a\": {\"t\": [1, -2.5e3, true, null]},\n  \"b\": \"x\\u00e9\\ud83d\\ude00\"\n}";
        let doc = parse(text).unwrap();
        let members = object(&doc);
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].key, "a");
        assert_eq!(line_column(text, members[0].key_offset), (2, 3));
        assert_eq!(line_column(text, members[1].value.offset), (3, 8));
        assert_eq!(members[1].value.value, Value::String("xé😀".into()));
        let inner = object(&members[0].value);
        match &inner[0].value.value {
            Value::Array(items) => {
                assert_eq!(items[1].value, Value::Number("-2.5e3".into()));
                assert_eq!(items[2].value, Value::Bool(true));
                assert_eq!(items[3].value, Value::Null);
            }
            other => panic!("expected array, got {other:?}"),
        }
    }

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let doc = parse(r#"{"x": 1, "x": 2}"#).unwrap();
        let keys: Vec<_> = object(&doc).iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["x", "x"]);
    }

    #[test]
    fn reports_where_malformed_input_breaks() {
        let text = "{\n  \"a\": 1,\n  \"b\" 2\n}";
        let err = parse(text).unwrap_err();
        assert_eq!(line_column(text, err.offset), (3, 7));
        assert!(err.message.contains("':'"), "{}", err.message);

        let err = parse("{\"a\": ").unwrap_err();
        assert!(err.message.contains("end of file"), "{}", err.message);
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("{} x").unwrap_err().message.contains("after the end"));
        assert!(parse("\"a\nb\"").unwrap_err().message.contains("control"));
        assert!(parse("[01]").is_err());
        assert!(parse("\"\\ud800\"").is_err());
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "{\"é\": x}";
        let err = parse(text).unwrap_err();
        assert_eq!(line_column(text, err.offset), (1, 7));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let text = "[".repeat(10_000);
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{}", err.message);
    }
}
