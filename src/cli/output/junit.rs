//! JUnit XML (`--output junit`), as CI servers (Jenkins, GitLab) read it: one
//! `<testsuite>` per host, one `<testcase>` per check (`classname` the host, `name` the
//! check); a failed check has a `<failure>`, an undecided check or a host that did not
//! answer an `<error>`, a check still waiting for its host `<skipped>`. The `message`
//! attribute is one line (`found mode=0644; expected mode=0600`); the element's text and
//! a passing check's `<system-out>` hold the `found:`/`expected:` lines.
//!
//! The XML is written with quick-xml, which escapes every text and attribute; characters
//! XML 1.0 cannot carry at all are replaced first.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::results::{HostRows, HostState, Row, Rows, Verdict, detail, expected_line, facts_line};

/// `rows` as a JUnit XML document, ending in a newline.
pub fn junit(rows: &Rows<'_>) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = document(&mut writer, rows);
    let mut text = String::from_utf8(writer.into_inner()).unwrap_or_default();
    text.push('\n');
    text
}

fn document(w: &mut Writer<Vec<u8>>, rows: &Rows<'_>) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let c = rows.counts();
    w.create_element("testsuites")
        .with_attribute(("name", "werify"))
        .with_attribute(("tests", c.checks().to_string().as_str()))
        .with_attribute(("failures", c.failed.to_string().as_str()))
        .with_attribute(("errors", c.errored.to_string().as_str()))
        .with_attribute(("skipped", c.pending.to_string().as_str()))
        .write_inner_content(|w| {
            for host in &rows.hosts {
                suite(w, host)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn suite(w: &mut Writer<Vec<u8>>, host: &HostRows<'_>) -> io::Result<()> {
    let count = |f: fn(&Verdict) -> bool| host.rows.iter().filter(|r| f(&r.verdict)).count();
    let name = xml_text(host.host);
    let mut element = w
        .create_element("testsuite")
        .with_attribute(("name", name.as_str()))
        .with_attribute(("tests", host.rows.len().to_string().as_str()))
        .with_attribute((
            "failures",
            count(|v| *v == Verdict::Fail).to_string().as_str(),
        ))
        .with_attribute((
            "errors",
            count(|v| matches!(v, Verdict::Error(_)))
                .to_string()
                .as_str(),
        ))
        .with_attribute((
            "skipped",
            count(|v| *v == Verdict::Pending).to_string().as_str(),
        ));
    if let HostState::Answered {
        took_ms: Some(took_ms),
    } = host.state
    {
        element = element.with_attribute(("time", seconds(took_ms).as_str()));
    }
    element.write_inner_content(|w| {
        for row in &host.rows {
            case(w, &name, row)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn case(w: &mut Writer<Vec<u8>>, classname: &str, row: &Row<'_>) -> io::Result<()> {
    let name = xml_text(row.check);
    let element = w
        .create_element("testcase")
        .with_attribute(("name", name.as_str()))
        .with_attribute(("classname", classname));
    let body = xml_text(&detail_lines(row));
    let message = xml_text(&detail(row));
    let (tag, kind) = match &row.verdict {
        Verdict::Pass if body.is_empty() => {
            element.write_empty()?;
            return Ok(());
        }
        Verdict::Pass => ("system-out", ""),
        Verdict::Fail => ("failure", "failed"),
        Verdict::Error(_) => ("error", "error"),
        Verdict::Pending => ("skipped", ""),
    };
    element.write_inner_content(|w| {
        let inner = w.create_element(tag);
        match tag {
            "system-out" => inner.write_text_content(BytesText::new(&body))?,
            "skipped" => inner
                .with_attribute(("message", message.as_str()))
                .write_empty()?,
            _ => {
                let inner = inner
                    .with_attribute(("message", message.as_str()))
                    .with_attribute(("type", kind));
                if body.is_empty() {
                    inner.write_empty()?
                } else {
                    inner.write_text_content(BytesText::new(&body))?
                }
            }
        };
        Ok(())
    })?;
    Ok(())
}

/// The `found:` and `expected:` lines of a row, for the element's text.
fn detail_lines(row: &Row<'_>) -> String {
    let mut lines = Vec::new();
    if let Verdict::Error(e) = &row.verdict {
        lines.push(format!("error: {e}"));
    }
    if let Some(o) = &row.observation {
        if !o.found.is_empty() {
            lines.push(format!("found: {}", facts_line(&o.found)));
        }
        if let Some(e) = expected_line(o) {
            lines.push(format!("expected: {e}"));
        }
    }
    lines.join("\n")
}

/// Milliseconds as JUnit's seconds, `0.123`.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `text` with the characters XML 1.0 cannot hold (control characters other than tab,
/// newline and carriage return) replaced by U+FFFD.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() && (c as u32) < 0x20 => '\u{FFFD}',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Facts, Observation};

    #[test]
    fn one_suite_per_host_one_case_per_check_with_the_reasons() {
        let mode = Observation {
            found: Facts::new().with("mode", "0644"),
            expected: Facts::new().with("mode", "0600"),
            negated: false,
        };
        let rows = Rows {
            hosts: vec![HostRows {
                host: "10.0.0.1:30035",
                state: HostState::Answered {
                    took_ms: Some(1234),
                },
                rows: vec![
                    Row {
                        check: "a<&>\"",
                        verdict: Verdict::Pass,
                        observation: None,
                    },
                    Row {
                        check: "mode",
                        verdict: Verdict::Fail,
                        observation: Some(mode),
                    },
                    Row {
                        check: "gone",
                        verdict: Verdict::Error("stat /x\u{1}: No such file".into()),
                        observation: None,
                    },
                ],
            }],
            at_unix_ms: None,
        };
        let xml = junit(&rows);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="10.0.0.1:30035" tests="3" failures="1" errors="1" skipped="0" time="1.234">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="a&lt;&amp;&gt;&quot;" classname="10.0.0.1:30035"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="found mode=0644; expected mode=0600" type="failed">found: mode=0644"#),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"stat /x\u{FFFD}: No such file\" type=\"error\">"),
            "{xml}"
        );
    }
}
