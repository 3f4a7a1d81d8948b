//! [`encoded_len`]: the length of a value's CBOR encoding as `ciborium` writes it, computed
//! by walking the value with a counting serde `Serializer` instead of running the encoder.
//! Every datagram, queued update and (in the simulator) push-pull state is sized before it
//! is sent, so sizing is on the hot path, and running ciborium's encoder into a byte
//! counter costs about as much as encoding. The rules mirror
//! `ciborium::ser` 0.2 (minimal-length heads, structs as maps keyed by field name, enums as
//! `{variant: value}`, `None`/unit as null, not human-readable); what it does not model
//! (floats, integers beyond 64 bits, ciborium's tag wrappers) is measured by running the
//! encoder into a byte counter. Tests compare it with real encodings of every message kind.

use std::fmt;

use serde::{Serialize, ser};

/// CBOR length of `value` as `message::encode_value` would encode it, without building
/// the bytes (sizing every update and every datagram's header is on the path of every
/// message sent).
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    if let Some(len) = cbor_len(value) {
        return len;
    }
    let mut count = ByteCount(0);
    // Our message types always serialize (see `encode_value`); a failure would be a bug
    // in the codec, caught by the tests that compare this with real encodings.
    let _ = ciborium::into_writer(value, &mut count);
    count.0
}

/// Counts bytes instead of storing them.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encoded CBOR length of `value`, or `None` if it holds something this counter does not
/// model (see the module docs).
fn cbor_len<T: Serialize + ?Sized>(value: &T) -> Option<usize> {
    let mut c = Counter(0);
    value.serialize(&mut c).ok()?;
    Some(c.0)
}

/// Length of a CBOR item head carrying `n` (major type bits + argument).
fn head(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fn head_len(n: usize) -> usize {
    head(u64::try_from(n).unwrap_or(u64::MAX))
}

/// "Not modelled here": the caller measures with the real encoder instead.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value not modelled by the CBOR length counter")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

struct Counter(usize);

/// A collection in progress; `indefinite` collections end with a break byte.
struct Compound<'a> {
    c: &'a mut Counter,
    indefinite: bool,
}

impl Compound<'_> {
    fn finish(self) -> Result<(), Unsupported> {
        if self.indefinite {
            self.c.0 += 1;
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Counter {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, _v: bool) -> Result<(), Unsupported> {
        self.0 += 1;
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        // Negative n is encoded as -1 - n.
        let arg = if v < 0 { (v as u64) ^ !0 } else { v as u64 };
        self.0 += head(arg);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        let v = i64::try_from(v).map_err(|_| Unsupported)?;
        self.serialize_i64(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.0 += head(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        let v = u64::try_from(v).map_err(|_| Unsupported)?;
        self.serialize_u64(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0 += head_len(v.len()) + v.len();
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        self.0 += head_len(v.len()) + v.len();
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.0 += 1;
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if name.starts_with("@@") {
            return Err(Unsupported); // ciborium's tag wrappers
        }
        self.0 += 1 + head_len(variant.len()) + variant.len();
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        self.0 += len.map_or(1, head_len);
        Ok(Compound {
            c: self,
            indefinite: len.is_none(),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        if name.starts_with("@@") {
            return Err(Unsupported);
        }
        self.0 += 1 + head_len(variant.len()) + variant.len() + head_len(len);
        Ok(Compound {
            c: self,
            indefinite: false,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(len)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.serialize_tuple_variant(name, index, variant, len)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The four compound kinds whose items are just values in a row: each item adds its own
/// length, the header was counted when the compound began.
macro_rules! items_in_a_row {
    ($($kind:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Unsupported> {
                value.serialize(&mut *self.c)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.finish()
            }
        }
    )*};
}

items_in_a_row!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Unsupported> {
        key.serialize(&mut *self.c)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.c)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

/// Struct fields, plain or in a variant: the key (a text string) then the value.
macro_rules! keyed_fields {
    ($($kind:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.c.0 += head_len(key.len()) + key.len();
                value.serialize(&mut *self.c)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.finish()
            }
        }
    )*};
}

keyed_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use crate::base::NodeId;
    use crate::mesh::member::{HealthSummary, Peer, State};
    use crate::mesh::message::{MemberState, Message, PushPull, Update, encode_value};

    fn same<T: Serialize + fmt::Debug>(v: &T) {
        assert_eq!(cbor_len(v), Some(encode_value(v).len()), "{v:?}");
    }

    fn peer(n: u8, v6: bool) -> Peer {
        let addr: SocketAddr = if v6 {
            format!("[fd00::{n:x}]:{}", 7000 + u16::from(n))
                .parse()
                .unwrap()
        } else {
            SocketAddr::from(([10, 0, n, 1], 7946))
        };
        Peer {
            id: NodeId([n; 16]),
            addr,
        }
    }

    #[test]
    fn integers_and_strings_at_every_head_size() {
        for v in [0u64, 23, 24, 255, 256, 65_535, 65_536, 1 << 32, u64::MAX] {
            same(&v);
        }
        for v in [0i64, -1, -24, -25, -256, -257, i64::MIN, i64::MAX] {
            same(&v);
        }
        for n in [0usize, 23, 24, 255, 256, 70_000] {
            same(&"é".repeat(n));
            same(&vec![7u8; n]);
        }
        same(&'é');
        same(&(true, None::<u8>, Some(3u8), ()));
        assert_eq!(cbor_len(&1.5f64), None);
    }

    #[test]
    fn every_message_kind_matches_the_encoder() {
        let health = HealthSummary {
            version: 300,
            passing: 12,
            failing: 2,
            erroring: 1,
            failing_names: vec!["disk".into(), "ü".repeat(30)],
            erroring_names: vec!["dns".into()],
            names_omitted: 3,
            at_unix_ms: 1_764_000_000_000,
            refresh_id: 70_000,
        };
        let tags: BTreeMap<String, String> = [
            ("role".to_string(), "db".to_string()),
            ("z".into(), "x".repeat(40)),
        ]
        .into();
        let updates = vec![
            Update::Alive {
                peer: peer(1, false),
                incarnation: 5,
                tags: tags.clone(),
            },
            Update::Alive {
                peer: peer(2, true),
                incarnation: 1 << 40,
                tags: BTreeMap::new(),
            },
            Update::Suspect {
                id: NodeId([3; 16]),
                incarnation: 24,
                by: NodeId([4; 16]),
            },
            Update::Dead {
                id: NodeId([5; 16]),
                incarnation: 0,
                by: NodeId([6; 16]),
            },
            Update::Left {
                id: NodeId([7; 16]),
                incarnation: 256,
                by: NodeId([7; 16]),
            },
            Update::Health {
                id: NodeId([8; 16]),
                incarnation: 9,
                summary: health.clone(),
            },
        ];
        for u in &updates {
            same(u);
        }
        let msgs = vec![
            Message::Ping {
                from: peer(1, false),
                seq: 77,
                target: NodeId([2; 16]),
                updates: updates.clone(),
            },
            Message::Ack {
                from: NodeId([2; 16]),
                seq: u32::MAX,
                updates: Vec::new(),
            },
            Message::PingReq {
                from: peer(3, true),
                seq: 1,
                target: peer(4, false),
            },
            Message::Nack {
                from: NodeId([4; 16]),
                seq: 300,
            },
            Message::Gossip {
                from: NodeId([5; 16]),
                updates,
            },
            Message::PushPull(PushPull {
                from: peer(6, false),
                join: true,
                members: (0..40u8)
                    .map(|n| MemberState {
                        peer: peer(n, n % 3 == 0),
                        incarnation: u64::from(n) * 1000,
                        state: [State::Alive, State::Suspect, State::Dead, State::Left]
                            [usize::from(n % 4)],
                        tags: if n % 2 == 0 {
                            tags.clone()
                        } else {
                            BTreeMap::new()
                        },
                        health: (n % 5 == 0).then(|| (u64::from(n), health.clone())),
                        by: (n % 4 != 0).then_some(NodeId([n; 16])),
                    })
                    .collect(),
                digest: None,
            }),
            Message::PushPull(PushPull {
                from: peer(7, false),
                join: false,
                members: Vec::new(),
                digest: Some(crate::mesh::digest::StateDigest([0xd1; 16])),
            }),
        ];
        for m in &msgs {
            same(m);
        }
    }
}
