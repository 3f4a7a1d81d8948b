//! Golden encodings of what travels between nodes: a [`CheckSet`] (inside
//! `Request::RunChecks` and `Request::Submit`) and [`Outcome`]s (inside
//! `Response::CheckResults`), both CBOR via ciborium. Nodes of different builds share a
//! mesh, so these bytes must not change when the checks code is reorganised; a new check
//! type may add encodings but must leave these alone.
//!
//! The sets are built only through the operations-file parser and serde, never by naming
//! Rust types, so the test holds whatever shape the types take inside the crate. The
//! serde_json spelling is pinned too: tests build peer-style sets from it.

use crate::base::hex::{cbor, decode_golden, encode};
use std::collections::BTreeMap;

use super::{CheckSet, Outcome, parse_operations};

/// One check of every type, with optional fields both given and left out, `expect`,
/// and timeouts in each unit.
const EVERY_TYPE: &str = r#"{
  "cmd_full":     {"type": "command", "command": "uname", "args": ["-s", ""], "exit_status": -1, "stdout_contains": "Linux", "timeout": "5s"},
  "cmd_min":      {"type": "command", "command": "true"},
  "disk_frac":    {"type": "disk_free", "path": "/", "min_percent": 12.5},
  "disk_int":     {"type": "disk_free", "path": "/var", "min_percent": 10},
  "fc":           {"type": "file_contains", "path": "/etc/hosts", "check": "localhost", "expect": false},
  "fe":           {"type": "file_exists", "path": "/etc/hosts"},
  "fh":           {"type": "file_hash", "path": "/etc/hostname", "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"},
  "fm":           {"type": "file_matches", "path": "/etc/hosts", "pattern": "^127\\.0\\.0\\.1\\s+\\S*localhost", "timeout": "250ms"},
  "fmode_full":   {"type": "file_mode", "path": "/etc/passwd", "mode": "4755", "owner": "root", "group": "0"},
  "fmode_min":    {"type": "file_mode", "path": "/etc/passwd", "mode": "0644"},
  "http":         {"type": "http_status", "url": "https://example.com/health", "status": 301, "timeout": "1m30s"},
  "port_min":     {"type": "port_listening", "port": 22},
  "port_udp6":    {"type": "port_listening", "port": 53, "proto": "udp", "address": "::1"},
  "port_v4":      {"type": "port_listening", "port": 65535, "proto": "tcp", "address": "127.0.0.1"},
  "pr_both":      {"type": "process_running", "path": "/usr/sbin/sshd", "check": "sshd"},
  "pr_name":      {"type": "process_running", "check": "systemd", "expect": false},
  "svc":          {"type": "service_active", "name": "cron.service"},
  "user":         {"type": "user_exists", "name": "nobody"}
}"#;

/// `EVERY_TYPE` as ciborium encodes it.
const EVERY_TYPE_CBOR: &str = concat!(
    "a166636865636b73b268636d645f66756c6ca3646b696e64a167436f6d6d616e64a467636f6d6d616e646575",
    "6e616d65646172677382622d73606b657869745f737461747573206f7374646f75745f636f6e7461696e7365",
    "4c696e757866657870656374f56774696d656f7574a2647365637305656e616e6f730067636d645f6d696ea3",
    "646b696e64a167436f6d6d616e64a467636f6d6d616e6464747275656461726773806b657869745f73746174",
    "7573006f7374646f75745f636f6e7461696e73f666657870656374f56774696d656f7574f6696469736b5f66",
    "726163a3646b696e64a1684469736b46726565a26470617468612f6b6d696e5f70657263656e74f94a406665",
    "7870656374f56774696d656f7574f6686469736b5f696e74a3646b696e64a1684469736b46726565a2647061",
    "7468642f7661726b6d696e5f70657263656e74f9490066657870656374f56774696d656f7574f6626663a364",
    "6b696e64a16c46696c65436f6e7461696e73a264706174686a2f6574632f686f73747365636865636b696c6f",
    "63616c686f737466657870656374f46774696d656f7574f6626665a3646b696e64a16a46696c654578697374",
    "73a164706174686a2f6574632f686f73747366657870656374f56774696d656f7574f6626668a3646b696e64",
    "a16846696c6548617368a264706174686d2f6574632f686f73746e616d656673686132353678406533623063",
    "3434323938666331633134396166626634633839393666623932343237616534316534363439623933346361",
    "34393539393162373835326238353566657870656374f56774696d656f7574f662666da3646b696e64a16b46",
    "696c654d617463686573a264706174686a2f6574632f686f737473677061747465726e781c5e3132375c2e30",
    "5c2e305c2e315c732b5c532a6c6f63616c686f737466657870656374f56774696d656f7574a2647365637300",
    "656e616e6f731a0ee6b2806a666d6f64655f66756c6ca3646b696e64a16846696c654d6f6465a46470617468",
    "6b2f6574632f706173737764646d6f64651909ed656f776e657264726f6f746567726f757061306665787065",
    "6374f56774696d656f7574f669666d6f64655f6d696ea3646b696e64a16846696c654d6f6465a46470617468",
    "6b2f6574632f706173737764646d6f64651901a4656f776e6572f66567726f7570f666657870656374f56774",
    "696d656f7574f66468747470a3646b696e64a16a48747470537461747573a26375726c781a68747470733a2f",
    "2f6578616d706c652e636f6d2f6865616c74686673746174757319012d66657870656374f56774696d656f75",
    "74a26473656373185a656e616e6f730068706f72745f6d696ea3646b696e64a16d506f72744c697374656e69",
    "6e67a364706f7274166570726f746f635463706761646472657373f666657870656374f56774696d656f7574",
    "f669706f72745f75647036a3646b696e64a16d506f72744c697374656e696e67a364706f727418356570726f",
    "746f635564706761646472657373a1625636900000000000000000000000000000000166657870656374f567",
    "74696d656f7574f667706f72745f7634a3646b696e64a16d506f72744c697374656e696e67a364706f727419",
    "ffff6570726f746f635463706761646472657373a162563484187f00000166657870656374f56774696d656f",
    "7574f66770725f626f7468a3646b696e64a16e50726f6365737352756e6e696e67a264706174686e2f757372",
    "2f7362696e2f7373686465636865636b647373686466657870656374f56774696d656f7574f66770725f6e61",
    "6d65a3646b696e64a16e50726f6365737352756e6e696e67a26470617468f665636865636b6773797374656d",
    "6466657870656374f46774696d656f7574f663737663a3646b696e64a16d53657276696365416374697665a1",
    "646e616d656c63726f6e2e7365727669636566657870656374f56774696d656f7574f66475736572a3646b69",
    "6e64a16a55736572457869737473a1646e616d65666e6f626f647966657870656374f56774696d656f7574f6",
);

/// `EVERY_TYPE` in serde_json's spelling of the same serde data model.
const EVERY_TYPE_JSON: &str = r#"{"checks":{"cmd_full":{"kind":{"Command":{"command":"uname","args":["-s",""],"exit_status":-1,"stdout_contains":"Linux"}},"expect":true,"timeout":{"secs":5,"nanos":0}},"cmd_min":{"kind":{"Command":{"command":"true","args":[],"exit_status":0,"stdout_contains":null}},"expect":true,"timeout":null},"disk_frac":{"kind":{"DiskFree":{"path":"/","min_percent":12.5}},"expect":true,"timeout":null},"disk_int":{"kind":{"DiskFree":{"path":"/var","min_percent":10.0}},"expect":true,"timeout":null},"fc":{"kind":{"FileContains":{"path":"/etc/hosts","check":"localhost"}},"expect":false,"timeout":null},"fe":{"kind":{"FileExists":{"path":"/etc/hosts"}},"expect":true,"timeout":null},"fh":{"kind":{"FileHash":{"path":"/etc/hostname","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},"expect":true,"timeout":null},"fm":{"kind":{"FileMatches":{"path":"/etc/hosts","pattern":"^127\\.0\\.0\\.1\\s+\\S*localhost"}},"expect":true,"timeout":{"secs":0,"nanos":250000000}},"fmode_full":{"kind":{"FileMode":{"path":"/etc/passwd","mode":2541,"owner":"root","group":"0"}},"expect":true,"timeout":null},"fmode_min":{"kind":{"FileMode":{"path":"/etc/passwd","mode":420,"owner":null,"group":null}},"expect":true,"timeout":null},"http":{"kind":{"HttpStatus":{"url":"https://example.com/health","status":301}},"expect":true,"timeout":{"secs":90,"nanos":0}},"port_min":{"kind":{"PortListening":{"port":22,"proto":"Tcp","address":null}},"expect":true,"timeout":null},"port_udp6":{"kind":{"PortListening":{"port":53,"proto":"Udp","address":"::1"}},"expect":true,"timeout":null},"port_v4":{"kind":{"PortListening":{"port":65535,"proto":"Tcp","address":"127.0.0.1"}},"expect":true,"timeout":null},"pr_both":{"kind":{"ProcessRunning":{"path":"/usr/sbin/sshd","check":"sshd"}},"expect":true,"timeout":null},"pr_name":{"kind":{"ProcessRunning":{"path":null,"check":"systemd"}},"expect":false,"timeout":null},"svc":{"kind":{"ServiceActive":{"name":"cron.service"}},"expect":true,"timeout":null},"user":{"kind":{"UserExists":{"name":"nobody"}},"expect":true,"timeout":null}}}"#;

/// Results as a node answers them: one of each outcome.
const RESULTS_CBOR: &str = concat!(
    "a466615f70617373a16753756363657373f566625f6661696ca16753756363657373f467635f6572726f72a1",
    "654572726f727573746174202f783a204e6f20737563682066696c656d645f656d7074795f6572726f72a165",
    "4572726f7260",
);

fn every_type() -> CheckSet {
    parse_operations(EVERY_TYPE, "every.json").expect("the golden set parses")
}

#[test]
fn check_set_cbor_is_byte_identical() {
    let set = every_type();
    assert_eq!(encode(&cbor(&set)), EVERY_TYPE_CBOR);
    // And bytes from a peer decode to the same set, which passes the receiver's checks.
    let back: CheckSet = ciborium::from_reader(decode_golden(EVERY_TYPE_CBOR).as_slice())
        .expect("golden bytes decode");
    assert_eq!(back, set);
    assert!(back.validate().is_ok());
}

#[test]
fn check_set_serde_json_spelling_is_unchanged() {
    let set = every_type();
    assert_eq!(
        serde_json::to_string(&set).expect("encode"),
        EVERY_TYPE_JSON
    );
    let back: CheckSet = serde_json::from_str(EVERY_TYPE_JSON).expect("golden JSON decodes");
    assert_eq!(back, set);
}

#[test]
fn outcome_cbor_is_byte_identical() {
    let results: BTreeMap<String, Outcome> = [
        ("a_pass", Outcome::Success(true)),
        ("b_fail", Outcome::Success(false)),
        ("c_error", Outcome::Error("stat /x: No such file".into())),
        ("d_empty_error", Outcome::Error(String::new())),
    ]
    .into_iter()
    .map(|(name, outcome)| (name.to_string(), outcome))
    .collect();
    assert_eq!(encode(&cbor(&results)), RESULTS_CBOR);
    let back: BTreeMap<String, Outcome> =
        ciborium::from_reader(decode_golden(RESULTS_CBOR).as_slice()).expect("golden bytes decode");
    assert_eq!(back, results);
}

#[test]
fn a_tampered_peer_set_is_refused_on_receipt() {
    // Valid CBOR, invalid check: the receiver's validate() must catch it.
    let bad: CheckSet = serde_json::from_value(serde_json::json!({"checks": {
        "x": {"kind": {"FileHash": {"path": "/x", "sha256": "abc"}}, "expect": true, "timeout": null}
    }}))
    .expect("type-correct");
    let bytes = cbor(&bad);
    let received: CheckSet = ciborium::from_reader(bytes.as_slice()).expect("decodes");
    assert_eq!(
        received.validate().map_err(|e| e.to_string()),
        Err("check \"x\": sha256 must be 64 hex digits (as printed by sha256sum)".to_string())
    );
}

#[test]
fn a_check_whose_fields_come_as_an_array_still_decodes() {
    // serde's struct-variant decoding takes the fields as a map (what nodes send) or, in
    // declaration order, as an array; both are accepted.
    use ciborium::Value;
    let text = |s: &str| Value::Text(s.into());
    let check = |kind: Value| {
        Value::Map(vec![
            (text("kind"), kind),
            (text("expect"), Value::Bool(true)),
            (text("timeout"), Value::Null),
        ])
    };
    let set = Value::Map(vec![(
        text("checks"),
        Value::Map(vec![
            (
                text("a"),
                check(Value::Map(vec![(
                    text("FileExists"),
                    Value::Array(vec![text("/etc/hosts")]),
                )])),
            ),
            (
                text("b"),
                check(Value::Map(vec![(
                    text("HttpStatus"),
                    Value::Array(vec![text("http://x/"), Value::Integer(200.into())]),
                )])),
            ),
        ]),
    )]);
    let bytes = cbor(&set);
    let decoded: CheckSet = ciborium::from_reader(bytes.as_slice()).expect("decodes");
    let expected = parse_operations(
        r#"{"a": {"type": "file_exists", "path": "/etc/hosts"},
            "b": {"type": "http_status", "url": "http://x/", "status": 200}}"#,
        "ops.json",
    )
    .expect("parses");
    assert_eq!(decoded, expected);
}

#[test]
fn unknown_or_malformed_kinds_are_decode_errors_not_panics() {
    use ciborium::Value;
    let text = |s: &str| Value::Text(s.into());
    for kind in [
        Value::Map(vec![(text("NoSuchCheck"), Value::Map(vec![]))]),
        Value::Map(vec![(text("FileExists"), Value::Map(vec![]))]),
        Value::Map(vec![(text("FileExists"), Value::Integer(3.into()))]),
        Value::Map(vec![(Value::Integer(0.into()), Value::Map(vec![]))]),
        text("FileExists"),
        Value::Null,
    ] {
        let set = Value::Map(vec![(
            text("checks"),
            Value::Map(vec![(
                text("a"),
                Value::Map(vec![
                    (text("kind"), kind.clone()),
                    (text("expect"), Value::Bool(true)),
                    (text("timeout"), Value::Null),
                ]),
            )]),
        )]);
        let bytes = cbor(&set);
        let decoded: Result<CheckSet, _> = ciborium::from_reader(bytes.as_slice());
        assert!(decoded.is_err(), "{kind:?} decoded to {decoded:?}");
    }
}

#[test]
fn debug_output_is_unchanged() {
    let set = every_type();
    let debug = |name: &str| format!("{:?}", set.get(name).expect("present"));
    assert_eq!(
        debug("fe"),
        r#"Check { kind: FileExists { path: "/etc/hosts" }, expect: true, timeout: None }"#
    );
    assert_eq!(
        debug("fmode_full"),
        r#"Check { kind: FileMode { path: "/etc/passwd", mode: 2541, owner: Some("root"), group: Some("0") }, expect: true, timeout: None }"#
    );
    assert_eq!(
        debug("port_udp6"),
        r#"Check { kind: PortListening { port: 53, proto: Udp, address: Some(::1) }, expect: true, timeout: None }"#
    );
    assert_eq!(
        debug("cmd_min"),
        r#"Check { kind: Command { command: "true", args: [], exit_status: 0, stdout_contains: None }, expect: true, timeout: None }"#
    );
}
