//! Golden texts: the exact error a user sees for a bad operations file, the exact error a
//! node gives for a bad set from a peer, and the exact outcome texts of checks that
//! fail to decide. Other tests look for fragments; these pin whole lines, so a
//! reorganisation of the checks code cannot change a message by accident.
//!
//! The list of valid types is written `{TYPES}` and filled in from the registry, so a
//! new check type does not have to edit this file.

use std::time::Duration;

use super::registry::CHECK_TYPES;
use super::testutil::TempDir;
use super::{CheckSet, Outcome, RunOptions, parse_operations, run_checks};

fn with_types(expected: &str) -> String {
    let types: Vec<&str> = CHECK_TYPES.iter().map(|t| t.name).collect();
    expected.replace("{TYPES}", &types.join(", "))
}

fn parse_error(text: &str) -> String {
    match parse_operations(text, "ops.json") {
        Ok(set) => format!("parsed: {set:?}"),
        Err(e) => e.to_string(),
    }
}

/// `(one check's JSON, exact error)`; each check is parsed as `{"c": CHECK}`.
const CHECK_ERRORS: &[(&str, &str)] = &[
    (
        r#"{"type": "file_exist", "path": "/"}"#,
        "ops.json:1:16: check \"c\": unknown type \"file_exist\"; did you mean \"file_exists\"? valid types: {TYPES}",
    ),
    (
        r#"{"type": "zzzzzzzz"}"#,
        "ops.json:1:16: check \"c\": unknown type \"zzzzzzzz\"; valid types: {TYPES}",
    ),
    (
        r#"{"path": "/"}"#,
        "ops.json:1:2: check \"c\": missing field \"type\"; valid types: {TYPES}",
    ),
    (
        r#"{"type": 3}"#,
        "ops.json:1:16: check \"c\": field \"type\" must be a string, got a number; valid types: {TYPES}",
    ),
    (
        r#""file_exists""#,
        "ops.json:1:7: check \"c\": a check must be an object such as {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}; got a string",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "path": "/x"}"#,
        "ops.json:1:44: check \"c\": field \"path\" is given twice",
    ),
    (
        r#"{"type": "command", "command": "true", "zzz": 1}"#,
        "ops.json:1:46: check \"c\": unknown field \"zzz\" for type command; command takes fields: command, type (required); args, exit_status, stdout_contains, expect, timeout (optional)",
    ),
    (
        r#"{"type": "disk_free", "path": "/", "min_percent": 1, "zzz": 1}"#,
        "ops.json:1:60: check \"c\": unknown field \"zzz\" for type disk_free; disk_free takes fields: path, min_percent, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_contains", "path": "/x", "check": "y", "zzz": 1}"#,
        "ops.json:1:61: check \"c\": unknown field \"zzz\" for type file_contains; file_contains takes fields: path, check, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "paht": "/"}"#,
        "ops.json:1:44: check \"c\": unknown field \"paht\" for type file_exists; did you mean \"path\"? file_exists takes fields: path, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_hash", "path": "/x", "sha256": "y", "zzz": 1}"#,
        "ops.json:1:58: check \"c\": unknown field \"zzz\" for type file_hash; file_hash takes fields: path, sha256, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_matches", "path": "/x", "pattern": "y", "zzz": 1}"#,
        "ops.json:1:62: check \"c\": unknown field \"zzz\" for type file_matches; file_matches takes fields: path, pattern, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "0644", "zzz": 1}"#,
        "ops.json:1:59: check \"c\": unknown field \"zzz\" for type file_mode; file_mode takes fields: path, mode, type (required); owner, group, expect, timeout (optional)",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": 200, "zzz": 1}"#,
        "ops.json:1:65: check \"c\": unknown field \"zzz\" for type http_status; http_status takes fields: url, status, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "port_listening", "port": 22, "zzz": 1}"#,
        "ops.json:1:46: check \"c\": unknown field \"zzz\" for type port_listening; port_listening takes fields: port, type (required); proto, address, expect, timeout (optional)",
    ),
    (
        r#"{"type": "process_running", "check": "x", "zzz": 1}"#,
        "ops.json:1:49: check \"c\": unknown field \"zzz\" for type process_running; process_running takes fields: type (required); path, check, expect, timeout (optional)",
    ),
    (
        r#"{"type": "service_active", "name": "x", "zzz": 1}"#,
        "ops.json:1:47: check \"c\": unknown field \"zzz\" for type service_active; service_active takes fields: name, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "user_exists", "name": "x", "zzz": 1}"#,
        "ops.json:1:44: check \"c\": unknown field \"zzz\" for type user_exists; user_exists takes fields: name, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "command"}"#,
        "ops.json:1:2: check \"c\": missing field \"command\" for type command; command takes fields: command, type (required); args, exit_status, stdout_contains, expect, timeout (optional)",
    ),
    (
        r#"{"type": "disk_free", "path": "/"}"#,
        "ops.json:1:2: check \"c\": missing field \"min_percent\" for type disk_free; disk_free takes fields: path, min_percent, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_contains", "path": "/x"}"#,
        "ops.json:1:2: check \"c\": missing field \"check\" for type file_contains; file_contains takes fields: path, check, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_exists"}"#,
        "ops.json:1:2: check \"c\": missing field \"path\" for type file_exists; file_exists takes fields: path, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_hash", "path": "/x"}"#,
        "ops.json:1:2: check \"c\": missing field \"sha256\" for type file_hash; file_hash takes fields: path, sha256, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_matches", "path": "/x"}"#,
        "ops.json:1:2: check \"c\": missing field \"pattern\" for type file_matches; file_matches takes fields: path, pattern, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_mode", "path": "/x"}"#,
        "ops.json:1:2: check \"c\": missing field \"mode\" for type file_mode; file_mode takes fields: path, mode, type (required); owner, group, expect, timeout (optional)",
    ),
    (
        r#"{"type": "http_status", "url": "http://x"}"#,
        "ops.json:1:2: check \"c\": missing field \"status\" for type http_status; http_status takes fields: url, status, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "port_listening"}"#,
        "ops.json:1:2: check \"c\": missing field \"port\" for type port_listening; port_listening takes fields: port, type (required); proto, address, expect, timeout (optional)",
    ),
    (
        r#"{"type": "process_running"}"#,
        "ops.json:1:2: check \"c\": process_running needs path, check or both (path matches the executable or argv[0], check the process name)",
    ),
    (
        r#"{"type": "service_active"}"#,
        "ops.json:1:2: check \"c\": missing field \"name\" for type service_active; service_active takes fields: name, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "user_exists"}"#,
        "ops.json:1:2: check \"c\": missing field \"name\" for type user_exists; user_exists takes fields: name, type (required); expect, timeout (optional)",
    ),
    (
        r#"{"type": "file_exists", "path": 5}"#,
        "ops.json:1:39: check \"c\": field \"path\" must be a string, got a number",
    ),
    (
        r#"{"type": "command", "command": "true", "args": "x"}"#,
        "ops.json:1:54: check \"c\": field \"args\" must be an array of strings, got a string",
    ),
    (
        r#"{"type": "command", "command": "true", "args": ["a", 1]}"#,
        "ops.json:1:54: check \"c\": field \"args\" must contain only strings, found a number",
    ),
    (
        r#"{"type": "command", "command": "true", "exit_status": 1.0}"#,
        "ops.json:1:61: check \"c\": field \"exit_status\" must be a whole number within range, got 1.0",
    ),
    (
        r#"{"type": "command", "command": "true", "exit_status": 4294967296}"#,
        "ops.json:1:61: check \"c\": exit_status is out of range",
    ),
    (
        r#"{"type": "port_listening", "port": "22"}"#,
        "ops.json:1:42: check \"c\": field \"port\" must be an integer, got a string",
    ),
    (
        r#"{"type": "port_listening", "port": 1.5}"#,
        "ops.json:1:42: check \"c\": field \"port\" must be a whole number within range, got 1.5",
    ),
    (
        r#"{"type": "port_listening", "port": 99999999999999999999}"#,
        "ops.json:1:42: check \"c\": field \"port\" must be a whole number within range, got 99999999999999999999",
    ),
    (
        r#"{"type": "disk_free", "path": "/", "min_percent": "10"}"#,
        "ops.json:1:57: check \"c\": field \"min_percent\" must be a number, got a string",
    ),
    (
        r#"{"type": "disk_free", "path": "/", "min_percent": 1e999}"#,
        "ops.json:1:57: check \"c\": field \"min_percent\" is not a usable number: 1e999",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "expect": "no"}"#,
        "ops.json:1:54: check \"c\": field \"expect\" must be true or false, got a string",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "timeout": 5}"#,
        "ops.json:1:55: check \"c\": field \"timeout\" must be a duration string such as \"5s\", got a number",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "timeout": "5"}"#,
        "ops.json:1:55: check \"c\": field \"timeout\": invalid duration \"5\"; write it as a whole number followed by ms, s or m, e.g. \"500ms\", \"5s\", \"1m\"",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "timeout": "0s"}"#,
        "ops.json:1:55: check \"c\": timeout must be above zero",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "timeout": "11m"}"#,
        "ops.json:1:55: check \"c\": timeout 11m is above the limit of 10m",
    ),
    (
        r#"{"type": "file_exists", "path": "/", "timeout": "99999999999999999999m"}"#,
        "ops.json:1:55: check \"c\": field \"timeout\": duration \"99999999999999999999m\" is too large",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": 644}"#,
        "ops.json:1:51: check \"c\": field \"mode\" must be an octal mode string such as \"0644\", got a number",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "0999"}"#,
        "ops.json:1:51: check \"c\": field \"mode\" must be octal permission bits such as \"0644\" or \"4755\", got \"0999\"",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "777777"}"#,
        "ops.json:1:51: check \"c\": field \"mode\" must be octal permission bits such as \"0644\" or \"4755\", got \"777777\"",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": ""}"#,
        "ops.json:1:51: check \"c\": field \"mode\" must be octal permission bits such as \"0644\" or \"4755\", got \"\"",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "17777"}"#,
        "ops.json:1:51: check \"c\": mode 17777 has bits beyond 7777",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "0644", "owner": "a:b"}"#,
        "ops.json:1:68: check \"c\": owner must not contain ':' or a newline",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "0644", "owner": "a\nb"}"#,
        "ops.json:1:68: check \"c\": owner must not contain ':' or a newline",
    ),
    (
        r#"{"type": "file_mode", "path": "/x", "mode": "0644", "group": ""}"#,
        "ops.json:1:68: check \"c\": group must not be empty",
    ),
    (
        r#"{"type": "file_mode", "path": "", "mode": "0644"}"#,
        "ops.json:1:37: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "file_contains", "path": "/x", "check": "a\nb"}"#,
        "ops.json:1:56: check \"c\": check contains a newline, so it can never match a single line; use file_matches for multi-part patterns",
    ),
    (
        r#"{"type": "file_contains", "path": "/x", "check": ""}"#,
        "ops.json:1:56: check \"c\": check must not be empty",
    ),
    (
        r#"{"type": "file_contains", "path": "", "check": "x"}"#,
        "ops.json:1:41: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "file_contains", "path": "/x\u0000", "check": "x"}"#,
        "ops.json:1:41: check \"c\": path contains a NUL character",
    ),
    (
        r#"{"type": "file_exists", "path": ""}"#,
        "ops.json:1:39: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "file_exists", "path": "a\u0000b"}"#,
        "ops.json:1:39: check \"c\": path contains a NUL character",
    ),
    (
        r#"{"type": "file_matches", "path": "/x", "pattern": "a(b"}"#,
        "ops.json:1:57: check \"c\": invalid regex: unclosed group",
    ),
    (
        r#"{"type": "file_matches", "path": "/x", "pattern": "x{2,1}"}"#,
        "ops.json:1:57: check \"c\": invalid regex: invalid repetition count range, the start must be <= the end",
    ),
    (
        r#"{"type": "file_matches", "path": "/x", "pattern": ""}"#,
        "ops.json:1:57: check \"c\": pattern must not be empty",
    ),
    (
        r#"{"type": "file_matches", "path": "", "pattern": "x"}"#,
        "ops.json:1:40: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "file_hash", "path": "/x", "sha256": "abc"}"#,
        "ops.json:1:53: check \"c\": sha256 must be 64 hex digits (as printed by sha256sum)",
    ),
    (
        r#"{"type": "file_hash", "path": "/x", "sha256": "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg"}"#,
        "ops.json:1:53: check \"c\": sha256 must be 64 hex digits (as printed by sha256sum)",
    ),
    (
        r#"{"type": "file_hash", "path": "", "sha256": "abc"}"#,
        "ops.json:1:37: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "process_running", "path": ""}"#,
        "ops.json:1:43: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "process_running", "check": ""}"#,
        "ops.json:1:44: check \"c\": check must not be empty",
    ),
    (
        r#"{"type": "process_running", "path": "/x", "check": "\u0000"}"#,
        "ops.json:1:58: check \"c\": check contains a NUL character",
    ),
    (
        r#"{"type": "port_listening", "port": 0}"#,
        "ops.json:1:42: check \"c\": port must be between 1 and 65535",
    ),
    (
        r#"{"type": "port_listening", "port": -1}"#,
        "ops.json:1:42: check \"c\": port must be between 1 and 65535",
    ),
    (
        r#"{"type": "port_listening", "port": 70000}"#,
        "ops.json:1:42: check \"c\": port must be between 1 and 65535",
    ),
    (
        r#"{"type": "port_listening", "port": 22, "proto": "sctp"}"#,
        "ops.json:1:55: check \"c\": proto must be \"tcp\" or \"udp\", got \"sctp\"",
    ),
    (
        r#"{"type": "port_listening", "port": 22, "proto": "TCP"}"#,
        "ops.json:1:55: check \"c\": proto must be \"tcp\" or \"udp\", got \"TCP\"",
    ),
    (
        r#"{"type": "port_listening", "port": 22, "address": "localhost"}"#,
        "ops.json:1:57: check \"c\": address must be an IP address such as 127.0.0.1 or ::1, got \"localhost\"",
    ),
    (
        r#"{"type": "port_listening", "port": 0, "proto": "sctp"}"#,
        "ops.json:1:54: check \"c\": proto must be \"tcp\" or \"udp\", got \"sctp\"",
    ),
    (
        r#"{"type": "command", "command": ""}"#,
        "ops.json:1:38: check \"c\": command must not be empty",
    ),
    (
        r#"{"type": "command", "command": "x", "args": ["a\u0000"]}"#,
        "ops.json:1:51: check \"c\": args contains a NUL character",
    ),
    (
        r#"{"type": "command", "command": "x", "stdout_contains": ""}"#,
        "ops.json:1:62: check \"c\": stdout_contains must not be empty",
    ),
    (
        r#"{"type": "command", "command": "x", "exit_status": -2147483649}"#,
        "ops.json:1:58: check \"c\": exit_status is out of range",
    ),
    (
        r#"{"type": "http_status", "url": "ftp://x", "status": 200}"#,
        "ops.json:1:38: check \"c\": url must start with http:// or https://",
    ),
    (
        r#"{"type": "http_status", "url": "", "status": 200}"#,
        "ops.json:1:38: check \"c\": url must not be empty",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": 99}"#,
        "ops.json:1:60: check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": 600}"#,
        "ops.json:1:60: check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": 70000}"#,
        "ops.json:1:60: check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": -1}"#,
        "ops.json:1:60: check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"type": "http_status", "url": "http://x", "status": 99, "timeout": "0s"}"#,
        "ops.json:1:60: check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"type": "http_status", "url": "ftp://x", "status": 200, "timeout": "0s"}"#,
        "ops.json:1:75: check \"c\": timeout must be above zero",
    ),
    (
        r#"{"type": "disk_free", "path": "/", "min_percent": 101}"#,
        "ops.json:1:57: check \"c\": min_percent must be between 0 and 100",
    ),
    (
        r#"{"type": "disk_free", "path": "/", "min_percent": -0.5}"#,
        "ops.json:1:57: check \"c\": min_percent must be between 0 and 100",
    ),
    (
        r#"{"type": "disk_free", "path": "", "min_percent": 1}"#,
        "ops.json:1:37: check \"c\": path must not be empty",
    ),
    (
        r#"{"type": "user_exists", "name": "a:b"}"#,
        "ops.json:1:39: check \"c\": name must not contain ':' or a newline",
    ),
    (
        r#"{"type": "user_exists", "name": ""}"#,
        "ops.json:1:39: check \"c\": name must not be empty",
    ),
    (
        r#"{"type": "user_exists", "name": "a\nb"}"#,
        "ops.json:1:39: check \"c\": name must not contain ':' or a newline",
    ),
    (
        r#"{"type": "service_active", "name": "--all"}"#,
        "ops.json:1:42: check \"c\": name must be a systemd unit name (letters, digits and :-_.@\\, not starting with -)",
    ),
    (
        r#"{"type": "service_active", "name": "a b"}"#,
        "ops.json:1:42: check \"c\": name must be a systemd unit name (letters, digits and :-_.@\\, not starting with -)",
    ),
    (
        r#"{"type": "service_active", "name": ""}"#,
        "ops.json:1:42: check \"c\": name must not be empty",
    ),
];

/// `(whole file, exact error)`.
const FILE_ERRORS: &[(&str, &str)] = &[
    (r#"{}"#, "ops.json:1:1: the operations file has no checks"),
    (
        r#"null"#,
        "ops.json:1:1: the operations file must be a JSON object mapping check names to checks, e.g. {\"hosts\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}; got null",
    ),
    (
        r#"[]"#,
        "ops.json:1:1: the operations file must be a JSON object mapping check names to checks, e.g. {\"hosts\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}; got an array",
    ),
    (
        r#""x""#,
        "ops.json:1:1: the operations file must be a JSON object mapping check names to checks, e.g. {\"hosts\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}; got a string",
    ),
    (
        r#""#,
        "ops.json:1:1: the file is empty; expected a JSON object",
    ),
    (
        r#"{"a": {"type": "file_exists",
 "path": "/""#,
        "ops.json:2:13: unexpected end of file; expected ',' or '}' after an object member",
    ),
    (
        r#"{"a": {"type": "file_exists", "path": "/"}} x"#,
        "ops.json:1:45: unexpected content after the end of the JSON value",
    ),
    (
        r#"{"a": {"type": "file_exists", "path": "/"},
 "a": {"type": "file_exists", "path": "/x"}}"#,
        "ops.json:2:2: check \"a\": duplicate check name; each check needs its own name",
    ),
    (
        r#"{"": {"type": "file_exists", "path": "/"}}"#,
        "ops.json:1:2: check \"\": check names must not be empty",
    ),
    (
        r#"{"a\nb": {"type": "file_exists", "path": "/"}}"#,
        "ops.json:1:2: check \"a\nb\": check names must not contain control characters (newlines, tabs, …)",
    ),
    (
        r#"{
  "ok": {"type": "file_exists", "path": "/"},
  "bad": {
    "type": "file_contains",
    "path": "/etc/hosts",
    "check": ""
  }
}"#,
        "ops.json:6:14: check \"bad\": check must not be empty",
    ),
    (
        r#"{"a": {"type": "file_exists", "path": "/"}, "b": {"type": "nope"}}"#,
        "ops.json:1:59: check \"b\": unknown type \"nope\"; valid types: {TYPES}",
    ),
    (
        r#"{"a": [1, 2}"#,
        "ops.json:1:12: unexpected character '}'; expected ',' or ']' after an array element",
    ),
    (
        r#"{"a": {"type": "file_exists", "path": "\q"}}"#,
        "ops.json:1:41: unexpected character 'q'; expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
    ),
    (
        r#"{"é": {"type": "file_exist", "path": "/"}}"#,
        "ops.json:1:16: check \"é\": unknown type \"file_exist\"; did you mean \"file_exists\"? valid types: {TYPES}",
    ),
];

/// `(one check in serde_json's spelling of a peer's set, exact validate() error)`.
const PEER_ERRORS: &[(&str, &str)] = &[
    (
        r#"{"kind": {"FileExists": {"path": ""}}, "expect": true, "timeout": null}"#,
        "check \"c\": path must not be empty",
    ),
    (
        r#"{"kind": {"FileContains": {"path": "/x", "check": "a\nb"}}, "expect": true, "timeout": null}"#,
        "check \"c\": check contains a newline, so it can never match a single line; use file_matches for multi-part patterns",
    ),
    (
        r#"{"kind": {"FileMatches": {"path": "/x", "pattern": "("}}, "expect": true, "timeout": null}"#,
        "check \"c\": invalid regex: unclosed group",
    ),
    (
        r#"{"kind": {"FileHash": {"path": "/x", "sha256": "abc"}}, "expect": true, "timeout": null}"#,
        "check \"c\": sha256 must be 64 hex digits (as printed by sha256sum)",
    ),
    (
        r#"{"kind": {"FileMode": {"path": "/x", "mode": 4096, "owner": null, "group": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": mode 10000 has bits beyond 7777",
    ),
    (
        r#"{"kind": {"FileMode": {"path": "/x", "mode": 420, "owner": null, "group": "a:b"}}, "expect": true, "timeout": null}"#,
        "check \"c\": group must not contain ':' or a newline",
    ),
    (
        r#"{"kind": {"ProcessRunning": {"path": null, "check": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": process_running needs path, check or both (path matches the executable or argv[0], check the process name)",
    ),
    (
        r#"{"kind": {"ProcessRunning": {"path": "", "check": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": path must not be empty",
    ),
    (
        r#"{"kind": {"PortListening": {"port": 0, "proto": "Tcp", "address": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": port must be between 1 and 65535",
    ),
    (
        r#"{"kind": {"Command": {"command": "", "args": [], "exit_status": 0, "stdout_contains": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": command must not be empty",
    ),
    (
        r#"{"kind": {"Command": {"command": "x", "args": ["a\u0000"], "exit_status": 0, "stdout_contains": null}}, "expect": true, "timeout": null}"#,
        "check \"c\": args contains a NUL character",
    ),
    (
        r#"{"kind": {"Command": {"command": "x", "args": [], "exit_status": 0, "stdout_contains": ""}}, "expect": true, "timeout": null}"#,
        "check \"c\": stdout_contains must not be empty",
    ),
    (
        r#"{"kind": {"HttpStatus": {"url": "ftp://x", "status": 200}}, "expect": true, "timeout": null}"#,
        "check \"c\": url must start with http:// or https://",
    ),
    (
        r#"{"kind": {"HttpStatus": {"url": "http://x", "status": 600}}, "expect": true, "timeout": null}"#,
        "check \"c\": status must be an HTTP status code between 100 and 599",
    ),
    (
        r#"{"kind": {"DiskFree": {"path": "/", "min_percent": 100.5}}, "expect": true, "timeout": null}"#,
        "check \"c\": min_percent must be between 0 and 100",
    ),
    (
        r#"{"kind": {"UserExists": {"name": "a:b"}}, "expect": true, "timeout": null}"#,
        "check \"c\": name must not contain ':' or a newline",
    ),
    (
        r#"{"kind": {"ServiceActive": {"name": "-x"}}, "expect": true, "timeout": null}"#,
        "check \"c\": name must be a systemd unit name (letters, digits and :-_.@\\, not starting with -)",
    ),
    (
        r#"{"kind": {"FileExists": {"path": "/"}}, "expect": true, "timeout": {"secs": 0, "nanos": 0}}"#,
        "check \"c\": timeout must be above zero",
    ),
    (
        r#"{"kind": {"FileExists": {"path": "/"}}, "expect": false, "timeout": {"secs": 3600, "nanos": 0}}"#,
        "check \"c\": timeout 60m is above the limit of 10m",
    ),
    (
        r#"{"kind": {"HttpStatus": {"url": "ftp://x", "status": 200}}, "expect": true, "timeout": {"secs": 0, "nanos": 0}}"#,
        "check \"c\": timeout must be above zero",
    ),
];

#[test]
fn every_type_named_in_these_texts_is_registered_in_order() {
    let names: Vec<&str> = CHECK_TYPES.iter().map(|t| t.name).collect();
    let today = [
        "command",
        "disk_free",
        "file_contains",
        "file_exists",
        "file_hash",
        "file_matches",
        "file_mode",
        "http_status",
        "port_listening",
        "process_running",
        "service_active",
        "user_exists",
    ];
    let kept: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| today.contains(n))
        .collect();
    assert_eq!(kept, today);
}

#[test]
fn check_errors_are_unchanged() {
    for (check, expected) in CHECK_ERRORS {
        let actual = parse_error(&format!("{{\"c\": {check}}}"));
        assert_eq!(actual, with_types(expected), "for {check}");
    }
}

#[test]
fn file_errors_are_unchanged() {
    for (file, expected) in FILE_ERRORS {
        assert_eq!(parse_error(file), with_types(expected), "for {file}");
    }
}

#[test]
fn peer_set_errors_are_unchanged() {
    for (kind, expected) in PEER_ERRORS {
        let json = format!(r#"{{"checks": {{"c": {kind}}}}}"#);
        let set: CheckSet =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{kind} is type-correct: {e}"));
        let actual = set.validate().map_err(|e| e.to_string());
        assert_eq!(actual, Err(expected.to_string()), "for {kind}");
    }
}

#[tokio::test]
async fn outcome_texts_are_unchanged() {
    let dir = TempDir::new();
    let file = dir.write("file", b"abc\n");
    let fifo = dir.mkfifo("fifo");
    let missing = dir.join("missing");
    let root = dir.path_str();
    let ops = format!(
        r#"{{
  "cmd_disabled":   {{"type": "command", "command": "true"}},
  "disk_proc":      {{"type": "disk_free", "path": "/proc", "min_percent": 1}},
  "disk_missing":   {{"type": "disk_free", "path": "{missing}", "min_percent": 1}},
  "fc_dir":         {{"type": "file_contains", "path": "{root}", "check": "x"}},
  "fc_fifo":        {{"type": "file_contains", "path": "{fifo}", "check": "x"}},
  "fc_missing":     {{"type": "file_contains", "path": "{missing}", "check": "x"}},
  "fc_dev":         {{"type": "file_contains", "path": "/dev/null", "check": "x"}},
  "fe_notdir":      {{"type": "file_exists", "path": "{file}/x"}},
  "fh_fifo":        {{"type": "file_hash", "path": "{fifo}", "sha256": "{zeros}"}},
  "fm_dir":         {{"type": "file_matches", "path": "{root}", "pattern": "x"}},
  "fmode_missing":  {{"type": "file_mode", "path": "{missing}", "mode": "0644"}},
  "fmode_nouser":   {{"type": "file_mode", "path": "{file}", "mode": "{mode:o}", "owner": "werify-no-such-user"}},
  "fmode_nogroup":  {{"type": "file_mode", "path": "{file}", "mode": "{mode:o}", "group": "werify-no-such-group"}}
}}"#,
        zeros = "0".repeat(64),
        mode = file_mode_bits(&file),
    );
    let set = parse_operations(&ops, "ops.json").expect("parses");
    let results = run_checks(&set, &RunOptions::default()).await;
    let expected = [
        (
            "cmd_disabled",
            "command checks are disabled on this node; start it with --allow-command".to_string(),
        ),
        (
            "disk_proc",
            "the filesystem holding /proc reports no size, so free space cannot be measured"
                .to_string(),
        ),
        (
            "disk_missing",
            format!("statvfs {missing}: No such file or directory (os error 2)"),
        ),
        (
            "fc_dir",
            format!("{root} is a directory; only regular files can be read"),
        ),
        (
            "fc_fifo",
            format!("{fifo} is a FIFO; only regular files can be read"),
        ),
        (
            "fc_missing",
            format!("stat {missing}: No such file or directory (os error 2)"),
        ),
        (
            "fc_dev",
            "/dev/null is a character device; only regular files can be read".to_string(),
        ),
        (
            "fe_notdir",
            format!("stat {file}/x: Not a directory (os error 20)"),
        ),
        (
            "fh_fifo",
            format!("{fifo} is a FIFO; only regular files can be read"),
        ),
        (
            "fm_dir",
            format!("{root} is a directory; only regular files can be read"),
        ),
        (
            "fmode_missing",
            format!("stat {missing}: No such file or directory (os error 2)"),
        ),
        (
            "fmode_nouser",
            "no user named werify-no-such-user in /etc/passwd; use the numeric id instead"
                .to_string(),
        ),
        (
            "fmode_nogroup",
            "no group named werify-no-such-group in /etc/group; use the numeric id instead"
                .to_string(),
        ),
    ];
    for (name, text) in &expected {
        assert_eq!(
            results.get(*name).map(|r| &r.outcome),
            Some(&Outcome::Error(text.clone())),
            "{name}"
        );
    }
    assert_eq!(results.len(), expected.len());

    let slow = parse_operations(
        r#"{"slow": {"type": "command", "command": "sleep", "args": ["30"], "timeout": "300ms"},
            "nowhere": {"type": "command", "command": "/no/such/werify-program"}}"#,
        "ops.json",
    )
    .expect("parses");
    let opts = RunOptions {
        allow_command: true,
        default_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let results = run_checks(&slow, &opts).await;
    assert_eq!(
        results.get("slow").map(|r| &r.outcome),
        Some(&Outcome::Error("timed out after 300ms".into()))
    );
    assert_eq!(
        results.get("nowhere").map(|r| &r.outcome),
        Some(&Outcome::Error(
            "starting /no/such/werify-program: No such file or directory (os error 2)".into()
        ))
    );
}

fn file_mode_bits(path: &str) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0)
}
