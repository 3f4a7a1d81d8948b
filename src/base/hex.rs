//! Bytes as lowercase hex digits, as werify shows digests and fingerprints. Test helpers
//! for golden encodings (hex back to bytes, a value to CBOR) live here too, under
//! `cfg(test)`; nothing here reads or writes anything.

/// `bytes` as lowercase hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex digits back to bytes, for golden encodings written in tests; panics on text that
/// is not hex.
#[cfg(test)]
pub(crate) fn decode_golden(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("bad golden hex at {i}"))
        })
        .collect()
}

/// `value` encoded as CBOR, as the wire carries it; for tests.
#[cfg(test)]
pub(crate) fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("encoding to a Vec cannot fail");
    bytes
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trips() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(super::encode(&bytes), "000fa5ff");
        assert_eq!(super::decode_golden("000fa5ff"), bytes);
    }
}
