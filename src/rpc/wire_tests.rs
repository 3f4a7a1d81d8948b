//! Golden encodings of a host's answer as it travels and is stored: every outcome in the
//! map all peers read, and the observations (found, expected) beside it in an optional
//! field. The cases: an answer without observations (the bytes a peer without them sends,
//! and what this build sends when nothing was observed), and one with found, expected and
//! a negated expectation; peers declaring the shapes without observations read ours, and
//! we read theirs.

use crate::base::hex::{cbor, decode_golden, encode};
use std::collections::BTreeMap;

use crate::checks::{Facts, Observation, Outcome};
use crate::rpc::protocol::{HostReport, Response};

/// `Response::CheckResults` with no observations: no `observations` key at all, the
/// same bytes as before observations existed.
const NO_OBSERVATIONS_CBOR: &str = concat!(
    "a16c436865636b526573756c7473a267726573756c7473a166615f70617373a16753756363657373f567",
    "746f6f6b5f6d7307",
);

/// `Response::CheckResults` with observations.
const WITH_OBSERVATIONS_CBOR: &str = concat!(
    "a16c436865636b526573756c7473a367726573756c7473a366615f70617373a16753756363657373f566",
    "625f6d6f6465a16753756363657373f467635f7669727573a16753756363657373f467746f6f6b5f6d73",
    "076c6f62736572766174696f6e73a366615f70617373a165666f756e64a1646c696e65613266625f6d6f",
    "6465a265666f756e64a3646d6f64656430363434656f776e657264726f6f746567726f757064726f6f74",
    "686578706563746564a1646d6f6465643036303067635f7669727573a365666f756e64a1666578697374",
    "736474727565686578706563746564a1666578697374736474727565676e656761746564f5",
);

fn mode() -> Observation {
    Observation {
        found: Facts::new()
            .with("mode", "0644")
            .with("owner", "root")
            .with("group", "root"),
        expected: Facts::new().with("mode", "0600"),
        negated: false,
    }
}

fn with_observations() -> Response {
    Response::CheckResults {
        results: BTreeMap::from([
            ("a_pass".to_string(), Outcome::Success(true)),
            ("b_mode".to_string(), Outcome::Success(false)),
            ("c_virus".to_string(), Outcome::Success(false)),
        ]),
        took_ms: 7,
        observations: BTreeMap::from([
            (
                "a_pass".to_string(),
                Observation {
                    found: Facts::new().with("line", "2"),
                    ..Observation::default()
                },
            ),
            ("b_mode".to_string(), mode()),
            (
                "c_virus".to_string(),
                Observation {
                    found: Facts::new().with("exists", "true"),
                    expected: Facts::new().with("exists", "true"),
                    negated: true,
                },
            ),
        ]),
    }
}

#[test]
fn an_answer_without_observations_is_byte_identical_to_before() {
    let r = Response::CheckResults {
        results: BTreeMap::from([("a_pass".to_string(), Outcome::Success(true))]),
        took_ms: 7,
        observations: BTreeMap::new(),
    };
    assert_eq!(encode(&cbor(&r)), NO_OBSERVATIONS_CBOR);
    // The bytes of a peer that has no observations at all.
    let older = OlderResponse::CheckResults {
        results: BTreeMap::from([("a_pass".to_string(), Outcome::Success(true))]),
        took_ms: 7,
    };
    assert_eq!(encode(&cbor(&older)), NO_OBSERVATIONS_CBOR);
    let back: Response =
        ciborium::from_reader(decode_golden(NO_OBSERVATIONS_CBOR).as_slice()).expect("decodes");
    let Response::CheckResults { observations, .. } = back else {
        panic!("not check results");
    };
    assert!(observations.is_empty());
}

#[test]
fn an_answer_with_observations_is_byte_identical() {
    let r = with_observations();
    assert_eq!(encode(&cbor(&r)), WITH_OBSERVATIONS_CBOR);
    let back: Response =
        ciborium::from_reader(decode_golden(WITH_OBSERVATIONS_CBOR).as_slice()).expect("decodes");
    let (
        Response::CheckResults { observations, .. },
        Response::CheckResults {
            observations: sent, ..
        },
    ) = (back, r)
    else {
        panic!("not check results");
    };
    assert_eq!(observations, sent);
    // Facts keep their order on the wire.
    let order: Vec<&str> = observations["b_mode"]
        .found
        .iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(order, ["mode", "owner", "group"]);
}

/// The variants as a peer without observations declares them.
#[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
enum OlderResponse {
    CheckResults {
        results: BTreeMap<String, Outcome>,
        took_ms: u64,
    },
}

#[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
enum OlderHostReport {
    Pending,
    Answered {
        results: BTreeMap<String, Outcome>,
        took_ms: u64,
    },
    Failed(String),
}

#[test]
fn peers_without_observations_read_ours_and_we_read_theirs() {
    // An older peer decodes our answer, skipping what it does not know.
    let bytes = decode_golden(WITH_OBSERVATIONS_CBOR);
    let old: OlderResponse = ciborium::from_reader(bytes.as_slice()).expect("old decodes");
    let OlderResponse::CheckResults { results, took_ms } = &old;
    assert_eq!(results.len(), 3);
    assert_eq!(*took_ms, 7);
    // We decode an older peer's answer, with no observations.
    let theirs: Response = ciborium::from_reader(cbor(&old).as_slice()).expect("decodes");
    let Response::CheckResults {
        observations,
        results: r,
        ..
    } = theirs
    else {
        panic!("not check results");
    };
    assert!(observations.is_empty());
    assert_eq!(&r, results);

    // The same for a stored or forwarded host report.
    let ours = HostReport::Answered {
        results: results.clone(),
        took_ms: 3,
        observations: BTreeMap::from([("b_mode".to_string(), mode())]),
    };
    let old: OlderHostReport = ciborium::from_reader(cbor(&ours).as_slice()).expect("old decodes");
    assert_eq!(
        old,
        OlderHostReport::Answered {
            results: results.clone(),
            took_ms: 3
        }
    );
    let back: HostReport = ciborium::from_reader(cbor(&old).as_slice()).expect("decodes");
    assert_eq!(back.observation("b_mode"), None);
    let back: HostReport = ciborium::from_reader(cbor(&ours).as_slice()).expect("decodes");
    assert_eq!(back, ours);
    assert_eq!(back.observation("b_mode"), Some(&mode()));
}

#[test]
fn a_peer_sending_too_many_facts_is_cut_on_receipt() {
    use ciborium::Value;
    let many: Vec<(Value, Value)> = (0..1000)
        .map(|i| (Value::Text(format!("k{i}")), Value::Text("v".into())))
        .collect();
    let o = Value::Map(vec![(Value::Text("found".into()), Value::Map(many))]);
    let decoded: Observation = ciborium::from_reader(cbor(&o).as_slice()).expect("decodes");
    assert_eq!(
        decoded.found.iter().count(),
        crate::checks::outcome::MAX_FACTS
    );
}
