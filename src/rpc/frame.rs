//! Length-prefixed CBOR frames on QUIC streams, and the CBOR codec underneath them.
//!
//! # Wire format
//!
//! ```text
//! +----------------------+---------------------------+
//! | length: u32, BE      | CBOR body (length bytes)  |
//! +----------------------+---------------------------+
//! ```
//!
//! One frame is sent with a single `write_all`. The reader checks the length against its
//! cap before reading (or allocating for) the body, and grows its buffer only as body bytes
//! actually arrive, so a peer that announces 16 MiB and sends nothing costs nothing.
//!
//! [`encode`] and [`decode`] are the bare CBOR codec (no length prefix), also usable for one
//! message per QUIC datagram. What the messages are lives in the protocol module, not here.
//!
//! `Vec<u8>` fields should carry `#[serde(with = "serde_bytes")]`, or ciborium writes them
//! as arrays of integers (about twice the size).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rpc::fault::Fault;

/// The hard cap on one frame's CBOR body, in bytes (16 MiB). [`read_frame`] never accepts
/// more, whatever `max` it is given.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Size of the length prefix.
const LENGTH_PREFIX_BYTES: usize = 4;
/// Most we reserve up front for a body; the rest grows as bytes arrive.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Why a frame could not be encoded, sent, read or decoded. After any error other than
/// [`FrameError::Closed`] the stream is in an unknown position: drop it (the connection and
/// other streams are unaffected).
#[derive(Clone, Debug, thiserror::Error)]
pub enum FrameError {
    /// The body is larger than the cap. Nothing was sent; when reading, nothing past the
    /// length prefix was consumed.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The body length that was announced or produced.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The message could not be serialized (a local bug, e.g. a map with non-string keys
    /// that serde refuses).
    #[error("cannot encode message as CBOR: {0}")]
    Encode(String),
    /// The body is not valid CBOR for the expected message type: the peer sent garbage or
    /// speaks another protocol version.
    #[error("malformed frame: {0}")]
    Decode(String),
    /// A valid message was followed by extra bytes inside the same frame.
    #[error("malformed frame: {extra} unexpected bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The peer finished the stream cleanly before a new frame started. Expected at the end
    /// of a conversation; not a protocol violation.
    #[error("stream finished before a frame started")]
    Closed,
    /// The stream finished in the middle of a frame.
    #[error("stream finished after {got} of {expected} bytes of a frame")]
    Truncated {
        /// Bytes the frame (prefix or body) needed.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// Reading failed: stream reset, connection lost, …
    #[error("cannot read frame: {}", read_error_detail(.0))]
    Read(#[source] quinn::ReadError),
    /// Writing failed: stream stopped, connection lost, …
    #[error("cannot send frame: {}", write_error_detail(.0))]
    Write(#[source] quinn::WriteError),
}

impl FrameError {
    /// Whose fault it is: a frame we cannot encode is our bug; a malformed, oversized or
    /// missing one is the peer's; a stream or connection that broke is the network's (or
    /// a peer that went away).
    pub fn fault(&self) -> Fault {
        match self {
            FrameError::Encode(_) => Fault::Bug,
            FrameError::TooLarge { .. }
            | FrameError::Decode(_)
            | FrameError::TrailingBytes { .. }
            | FrameError::Closed
            | FrameError::Truncated { .. } => Fault::Peer,
            FrameError::Read(_) | FrameError::Write(_) => Fault::Environment,
        }
    }
}

/// quinn displays a lost connection as just "connection lost"; add why.
fn read_error_detail(err: &quinn::ReadError) -> String {
    match err {
        quinn::ReadError::ConnectionLost(why) => format!("connection lost: {why}"),
        other => other.to_string(),
    }
}

/// quinn displays a lost connection as just "connection lost"; add why.
fn write_error_detail(err: &quinn::WriteError) -> String {
    match err {
        quinn::WriteError::ConnectionLost(why) => format!("connection lost: {why}"),
        other => other.to_string(),
    }
}

/// Serializes `msg` to CBOR (no length prefix). Fails if the result exceeds
/// [`MAX_FRAME_BYTES`].
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    ciborium::into_writer(msg, &mut out).map_err(|e| FrameError::Encode(e.to_string()))?;
    if out.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: out.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(out)
}

/// Deserializes one CBOR message that must fill `bytes` exactly. Never panics on garbage;
/// nesting depth is bounded by ciborium's recursion limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let mut rest = bytes;
    let msg = ciborium::from_reader(&mut rest).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(msg)
}

/// Encodes `msg` and writes it as one length-prefixed frame with a single write. Does not
/// finish the stream.
pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
) -> Result<(), FrameError> {
    let frame = encode_framed(msg)?;
    send.write_all(&frame).await.map_err(FrameError::Write)
}

/// Reads one length-prefixed frame and decodes it. `max` is the largest body accepted for
/// this stream, clamped to [`MAX_FRAME_BYTES`]; a longer announced length is refused before
/// any body byte is read. Returns [`FrameError::Closed`] if the stream ends cleanly first.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<T, FrameError> {
    let max = max.min(MAX_FRAME_BYTES);
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Closed),
        Err(quinn::ReadExactError::FinishedEarly(got)) => {
            return Err(FrameError::Truncated {
                expected: LENGTH_PREFIX_BYTES,
                got,
            });
        }
        Err(quinn::ReadExactError::ReadError(e)) => return Err(FrameError::Read(e)),
    }
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                return Err(FrameError::Truncated {
                    expected: len,
                    got: body.len(),
                });
            }
            Err(e) => return Err(FrameError::Read(e)),
        }
    }
    decode(&body)
}

/// The length prefix and the CBOR body in one buffer, ready for a single write.
fn encode_framed<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; LENGTH_PREFIX_BYTES];
    ciborium::into_writer(msg, &mut out).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - LENGTH_PREFIX_BYTES;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    // len <= MAX_FRAME_BYTES < u32::MAX, so the conversion cannot saturate.
    let prefix = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    out[..LENGTH_PREFIX_BYTES].copy_from_slice(&prefix);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        seq: u64,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        note: String,
    }

    fn ping() -> Ping {
        Ping {
            seq: 7,
            payload: vec![1, 2, 3, 255],
            note: "hello".to_string(),
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let bytes = encode(&ping()).unwrap();
        assert_eq!(decode::<Ping>(&bytes).unwrap(), ping());
    }

    #[test]
    fn bytes_fields_are_cbor_byte_strings() {
        let bytes = encode(&ping()).unwrap();
        // Major type 2 (byte string) of length 4 followed by the payload.
        let needle = [0x44, 1, 2, 3, 255];
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn framed_encoding_has_big_endian_length_prefix() {
        let framed = encode_framed(&ping()).unwrap();
        let body = encode(&ping()).unwrap();
        assert_eq!(framed[..4], (body.len() as u32).to_be_bytes());
        assert_eq!(framed[4..], body[..]);
    }

    #[test]
    fn oversized_message_is_refused_before_sending() {
        let big = Ping {
            seq: 0,
            payload: vec![0; MAX_FRAME_BYTES + 1],
            note: String::new(),
        };
        assert!(matches!(
            encode(&big),
            Err(FrameError::TooLarge {
                max: MAX_FRAME_BYTES,
                ..
            })
        ));
        assert!(matches!(
            encode_framed(&big),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_decodes_to_errors_not_panics() {
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff],
            vec![0x1f],
            // Byte string claiming 2^63 bytes.
            vec![0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0],
            // Array claiming 2^32 elements.
            vec![0x9a, 0xff, 0xff, 0xff, 0xff],
            // 10 000 nested arrays.
            vec![0x81; 10_000],
            // A map with the wrong field types.
            encode(&("seq", "not a number")).unwrap(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ];
        for input in inputs {
            let err = decode::<Ping>(&input).unwrap_err();
            assert!(matches!(err, FrameError::Decode(_)), "{input:?}: {err}");
            assert!(err.to_string().starts_with("malformed frame"), "{err}");
        }
        // Pseudo-random bytes: any outcome but a panic is fine.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            let len = (state % 64) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.push(state as u8);
            }
            let _ = decode::<Ping>(&buf);
            let _ = decode::<ciborium::Value>(&buf);
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&ping()).unwrap();
        bytes.extend_from_slice(&[0, 0]);
        assert!(matches!(
            decode::<Ping>(&bytes),
            Err(FrameError::TrailingBytes { extra: 2 })
        ));
    }

    /// Hang guard for the stream tests, not a speed assertion.
    const TEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

    /// Sends `raw` bytes on a fresh stream (then finishes it) and reads one frame from the
    /// other side with `max`.
    async fn read_raw(raw: Vec<u8>, max: usize) -> Result<Ping, FrameError> {
        let (_d, _a, dialed, accepted) = crate::rpc::tls::loopback_pair().await;
        let (mut send, _recv) = dialed.open_bi().await.unwrap();
        send.write_all(&raw).await.unwrap();
        send.finish().unwrap();
        let (_send, mut recv) = accepted.accept_bi().await.unwrap();
        let result = read_frame::<Ping>(&mut recv, max).await;
        dialed.close(0u32.into(), b"done");
        result
    }

    #[tokio::test]
    async fn frames_round_trip_over_a_stream_and_end_cleanly() {
        let run = async {
            let (_d, _a, dialed, accepted) = crate::rpc::tls::loopback_pair().await;
            let (mut send, _recv) = dialed.open_bi().await.unwrap();
            write_frame(&mut send, &ping()).await.unwrap();
            write_frame(&mut send, &Ping { seq: 8, ..ping() })
                .await
                .unwrap();
            send.finish().unwrap();
            let (_send, mut recv) = accepted.accept_bi().await.unwrap();
            assert_eq!(read_frame::<Ping>(&mut recv, 1024).await.unwrap(), ping());
            assert_eq!(read_frame::<Ping>(&mut recv, 1024).await.unwrap().seq, 8);
            assert!(matches!(
                read_frame::<Ping>(&mut recv, 1024).await,
                Err(FrameError::Closed)
            ));
        };
        tokio::time::timeout(TEST_DEADLINE, run).await.unwrap();
    }

    #[tokio::test]
    async fn announced_length_over_the_cap_is_refused_before_the_body() {
        let run = async {
            // Claims 4 GiB - 1 and sends nothing more: refused at once, no allocation.
            let err = read_raw(vec![0xff, 0xff, 0xff, 0xff], usize::MAX).await;
            assert!(
                matches!(
                    err,
                    Err(FrameError::TooLarge {
                        len: 0xffff_ffff,
                        max: MAX_FRAME_BYTES
                    })
                ),
                "{err:?}"
            );
            // The per-call cap applies too.
            let body = encode(&ping()).unwrap();
            let mut raw = (body.len() as u32).to_be_bytes().to_vec();
            raw.extend_from_slice(&body);
            let err = read_raw(raw, body.len() - 1).await;
            assert!(matches!(err, Err(FrameError::TooLarge { .. })), "{err:?}");
        };
        tokio::time::timeout(TEST_DEADLINE, run).await.unwrap();
    }

    #[tokio::test]
    async fn truncated_and_garbage_frames_are_errors() {
        let run = async {
            let err = read_raw(vec![0, 0], 1024).await;
            assert!(
                matches!(
                    err,
                    Err(FrameError::Truncated {
                        expected: 4,
                        got: 2
                    })
                ),
                "{err:?}"
            );
            let err = read_raw(vec![0, 0, 0, 10, 1, 2, 3], 1024).await;
            assert!(
                matches!(
                    err,
                    Err(FrameError::Truncated {
                        expected: 10,
                        got: 3
                    })
                ),
                "{err:?}"
            );
            let err = read_raw(vec![0, 0, 0, 3, 0xff, 0xff, 0xff], 1024).await;
            assert!(matches!(err, Err(FrameError::Decode(_))), "{err:?}");
        };
        tokio::time::timeout(TEST_DEADLINE, run).await.unwrap();
    }

    #[test]
    fn read_error_messages_keep_the_cause() {
        let err = FrameError::Read(quinn::ReadError::ConnectionLost(
            quinn::ConnectionError::TimedOut,
        ));
        assert_eq!(
            err.to_string(),
            "cannot read frame: connection lost: timed out"
        );
    }
}
