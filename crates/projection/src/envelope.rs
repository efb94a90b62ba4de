//! The event envelope: how an event is stored as the payload of one WAL record, and the views
//! projections and readers get of it.
//!
//! The WAL record gives the sequence number and timestamp. The payload holds, little-endian:
//!
//! | field | bytes |
//! | --- | --- |
//! | envelope format (1) | u8 |
//! | stream version | u64 |
//! | stream name | u16 length + UTF-8 |
//! | event type | u16 length + UTF-8 |
//! | actor | u16 length + UTF-8, or length `0xFFFF` when absent |
//! | correlation id | as actor |
//! | causation id | as actor |
//! | extra metadata | u32 length + MessagePack map (named fields), length 0 when absent |
//! | data | the rest: MessagePack with named fields |
//!
//! Parsing borrows from the payload and decodes nothing but the fixed fields, so a projection
//! that skips an event type pays almost nothing for it.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the envelope layout, the first byte of every event payload.
pub const ENVELOPE_FORMAT: u8 = 1;
/// Longest stream name, in bytes of UTF-8.
pub const STREAM_NAME_BYTES_MAX: usize = 1024;
/// Longest event type, in bytes of UTF-8.
pub const EVENT_TYPE_BYTES_MAX: usize = 256;
/// Longest actor, correlation id or causation id, in bytes of UTF-8.
pub const META_FIELD_BYTES_MAX: usize = 4096;

const ABSENT: u16 = u16::MAX;
const _: () = assert!(STREAM_NAME_BYTES_MAX < ABSENT as usize);
const _: () = assert!(EVENT_TYPE_BYTES_MAX < ABSENT as usize);
const _: () = assert!(META_FIELD_BYTES_MAX < ABSENT as usize);

/// Metadata of an event (owned): who caused it and how it relates to others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Who or what caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Identifier shared by the events of one request or workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Identifier of the event or command that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Free-form fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Meta {
    /// Metadata naming only an actor.
    #[must_use]
    pub fn actor(actor: impl Into<String>) -> Self {
        Self { actor: Some(actor.into()), ..Self::default() }
    }
}

/// Metadata borrowed from a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaRef<'a> {
    /// Who or what caused the event.
    pub actor: Option<&'a str>,
    /// Identifier shared by the events of one request or workflow.
    pub correlation_id: Option<&'a str>,
    /// Identifier of the event or command that caused this one.
    pub causation_id: Option<&'a str>,
    extra: &'a [u8],
}

impl MetaRef<'_> {
    /// The free-form fields, decoded.
    ///
    /// # Errors
    /// The stored map does not decode.
    pub fn extra(&self) -> std::result::Result<BTreeMap<String, serde_json::Value>, String> {
        if self.extra.is_empty() {
            return Ok(BTreeMap::new());
        }
        rmp_serde::from_slice(self.extra).map_err(|e| e.to_string())
    }

    /// An owned copy.
    ///
    /// # Errors
    /// The free-form fields do not decode.
    pub fn to_owned(&self) -> std::result::Result<Meta, String> {
        Ok(Meta {
            actor: self.actor.map(str::to_owned),
            correlation_id: self.correlation_id.map(str::to_owned),
            causation_id: self.causation_id.map(str::to_owned),
            extra: self.extra()?,
        })
    }
}

/// A stored event, parsed without decoding its data.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// Sequence number in the journal.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub ts: u64,
    /// The stream the event belongs to.
    pub stream: &'a str,
    /// The event's version within its stream (from 1).
    pub version: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The metadata.
    pub meta: MetaRef<'a>,
    /// The data, MessagePack with named fields.
    pub data: &'a [u8],
}

/// An event as a projection sees it: borrowed envelope fields and decoded data.
#[derive(Debug, Clone)]
pub struct Envelope<'a, E> {
    /// Sequence number in the journal.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub ts: u64,
    /// The stream the event belongs to.
    pub stream: &'a str,
    /// The event's version within its stream (from 1).
    pub version: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The metadata.
    pub meta: MetaRef<'a>,
    /// The decoded data.
    pub data: E,
}

/// An event read from the journal (owned).
#[derive(Debug, Clone, PartialEq)]
pub struct Event<E> {
    /// Sequence number in the journal.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub ts: u64,
    /// The stream the event belongs to.
    pub stream: String,
    /// The event's version within its stream (from 1).
    pub version: u64,
    /// The event type.
    pub event_type: String,
    /// The metadata.
    pub meta: Meta,
    /// The decoded data.
    pub data: E,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    seq: u64,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::envelope(self.seq, format!("truncated {what} at byte {}", self.at)));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }

    fn str(&mut self, what: &str, max: usize) -> Result<&'a str> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(Error::envelope(
                self.seq,
                format!("{what} of {len} bytes (at most {max})"),
            ));
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map_err(|e| Error::envelope(self.seq, format!("{what} is not UTF-8: {e}")))
    }

    fn opt_str(&mut self, what: &str) -> Result<Option<&'a str>> {
        let at = self.at;
        if self.u16(what)? == ABSENT {
            return Ok(None);
        }
        self.at = at;
        self.str(what, META_FIELD_BYTES_MAX).map(Some)
    }
}

impl<'a> RawEvent<'a> {
    /// Parses the payload of WAL record `seq`.
    ///
    /// # Errors
    /// `Envelope` naming the sequence number and what is wrong.
    pub fn parse(seq: u64, ts: u64, payload: &'a [u8]) -> Result<Self> {
        let mut c = Cursor { bytes: payload, at: 0, seq };
        let format = c.take(1, "envelope format")?[0];
        if format != ENVELOPE_FORMAT {
            return Err(Error::envelope(
                seq,
                format!("envelope format {format} (this build reads {ENVELOPE_FORMAT})"),
            ));
        }
        let version = u64::from_le_bytes(c.take(8, "stream version")?.try_into().expect("8"));
        let stream = c.str("stream name", STREAM_NAME_BYTES_MAX)?;
        let event_type = c.str("event type", EVENT_TYPE_BYTES_MAX)?;
        let actor = c.opt_str("actor")?;
        let correlation_id = c.opt_str("correlation id")?;
        let causation_id = c.opt_str("causation id")?;
        let extra_len = u32::from_le_bytes(c.take(4, "metadata length")?.try_into().expect("4"));
        let extra = c.take(extra_len as usize, "metadata")?;
        let data = &payload[c.at..];
        Ok(Self {
            seq,
            ts,
            stream,
            version,
            event_type,
            meta: MetaRef { actor, correlation_id, causation_id, extra },
            data,
        })
    }

    /// Decodes the data as `E`.
    ///
    /// # Errors
    /// `Decode` naming the sequence number, the event type and the decoder's complaint.
    pub fn decode<E: DeserializeOwned + 'static>(&self) -> Result<E> {
        // Projections that read no data (the stream index, counts) skip decoding entirely.
        if TypeId::of::<E>() == TypeId::of::<IgnoredAny>() {
            let ignored: Box<dyn Any> = Box::new(IgnoredAny);
            return Ok(*ignored.downcast::<E>().expect("E is IgnoredAny"));
        }
        rmp_serde::from_slice(self.data).map_err(|e| Error::Decode {
            seq: self.seq,
            event_type: self.event_type.to_owned(),
            target: std::any::type_name::<E>(),
            reason: e.to_string(),
        })
    }

    /// The envelope with decoded data, as projections see it.
    ///
    /// # Errors
    /// As [`RawEvent::decode`].
    pub fn envelope<E: DeserializeOwned + 'static>(&self) -> Result<Envelope<'a, E>> {
        Ok(Envelope {
            seq: self.seq,
            ts: self.ts,
            stream: self.stream,
            version: self.version,
            event_type: self.event_type,
            meta: self.meta,
            data: self.decode()?,
        })
    }

    /// An owned event with decoded data.
    ///
    /// # Errors
    /// As [`RawEvent::decode`]; `Envelope` if the metadata does not decode.
    pub fn to_event<E: DeserializeOwned + 'static>(&self) -> Result<Event<E>> {
        Ok(Event {
            seq: self.seq,
            ts: self.ts,
            stream: self.stream.to_owned(),
            version: self.version,
            event_type: self.event_type.to_owned(),
            meta: self
                .meta
                .to_owned()
                .map_err(|e| Error::envelope(self.seq, format!("metadata: {e}")))?,
            data: self.decode()?,
        })
    }
}

/// Encodes `data` as MessagePack with named fields.
///
/// # Errors
/// `Encode` if serialization fails.
pub fn encode_data<T: Serialize + ?Sized>(data: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(data).map_err(|e| Error::Encode(e.to_string()))
}

/// Appends `data` encoded as by [`encode_data`] to `out` (the same bytes, without an allocation
/// of its own): after [`encode_event_header`], this completes an event payload.
///
/// # Errors
/// `Encode` if the data does not serialize; `out` may then hold part of it.
pub fn encode_data_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, data: &T) -> Result<()> {
    rmp_serde::encode::write_named(out, data).map_err(|e| Error::Encode(e.to_string()))
}

fn check_len(what: &str, value: &str, max: usize) -> Result<u16> {
    if value.len() > max {
        return Err(Error::Invalid(format!("{what} of {} bytes (at most {max})", value.len())));
    }
    Ok(u16::try_from(value.len()).expect("checked against a max below u16::MAX"))
}

/// Checks a stream name: non-empty, at most [`STREAM_NAME_BYTES_MAX`] bytes.
///
/// # Errors
/// `Invalid` naming what is wrong.
pub fn check_stream(stream: &str) -> Result<()> {
    if stream.is_empty() {
        return Err(Error::Invalid("empty stream name".into()));
    }
    check_len("stream name", stream, STREAM_NAME_BYTES_MAX).map(drop)
}

/// Sets the stream version of an encoded event payload in place (it sits at a fixed offset),
/// so that a writer can encode envelopes before it knows their versions.
///
/// # Panics
/// If `payload` was not made by [`encode_event`].
pub fn set_version(payload: &mut [u8], version: u64) {
    assert_eq!(payload.first(), Some(&ENVELOPE_FORMAT), "an encoded event payload");
    payload[1..9].copy_from_slice(&version.to_le_bytes());
}

/// Encodes an event payload: the envelope fields and the already encoded `data`.
///
/// # Errors
/// `Invalid` for an empty or too long stream name or event type, or too long metadata;
/// `Encode` if the free-form metadata does not serialize.
pub fn encode_event(
    out: &mut Vec<u8>,
    stream: &str,
    version: u64,
    event_type: &str,
    meta: &Meta,
    data: &[u8],
) -> Result<()> {
    encode_event_header(out, stream, version, event_type, meta)?;
    out.extend_from_slice(data);
    Ok(())
}

/// Encodes the envelope fields of an event payload, everything but the data, which follows
/// them to the end of the payload (see [`encode_data_into`]).
///
/// # Errors
/// As [`encode_event`].
pub fn encode_event_header(
    out: &mut Vec<u8>,
    stream: &str,
    version: u64,
    event_type: &str,
    meta: &Meta,
) -> Result<()> {
    check_stream(stream)?;
    if event_type.is_empty() {
        return Err(Error::Invalid("empty event type".into()));
    }
    let stream_len = check_len("stream name", stream, STREAM_NAME_BYTES_MAX)?;
    let type_len = check_len("event type", event_type, EVENT_TYPE_BYTES_MAX)?;
    out.push(ENVELOPE_FORMAT);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&stream_len.to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(&type_len.to_le_bytes());
    out.extend_from_slice(event_type.as_bytes());
    for (what, field) in [
        ("actor", &meta.actor),
        ("correlation id", &meta.correlation_id),
        ("causation id", &meta.causation_id),
    ] {
        match field {
            Some(value) => {
                let len = check_len(what, value, META_FIELD_BYTES_MAX)?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(value.as_bytes());
            }
            None => out.extend_from_slice(&ABSENT.to_le_bytes()),
        }
    }
    if meta.extra.is_empty() {
        out.extend_from_slice(&0u32.to_le_bytes());
    } else {
        let extra = encode_data(&meta.extra)?;
        let len = u32::try_from(extra.len())
            .map_err(|_| Error::Invalid("free-form metadata over 4 GiB".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&extra);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Opened {
        owner: String,
        limit: u32,
    }

    #[test]
    fn round_trip_with_and_without_meta() {
        let data = encode_data(&Opened { owner: "ada".into(), limit: 7 }).expect("encode");
        let mut meta = Meta::actor("clerk");
        meta.causation_id = Some("cmd-9".into());
        meta.extra.insert("ip".into(), serde_json::json!("10.0.0.1"));
        for meta in [Meta::default(), meta] {
            let mut out = Vec::new();
            encode_event(&mut out, "account-1", 3, "opened", &meta, &data).expect("encode");
            let raw = RawEvent::parse(42, 99, &out).expect("parse");
            assert_eq!(
                (raw.seq, raw.ts, raw.stream, raw.version, raw.event_type),
                (42, 99, "account-1", 3, "opened")
            );
            assert_eq!(raw.meta.to_owned().expect("meta"), meta);
            let e: Event<Opened> = raw.to_event().expect("decode");
            assert_eq!(e.data, Opened { owner: "ada".into(), limit: 7 });
            let json: serde_json::Value = raw.decode().expect("as json");
            assert_eq!(json, serde_json::json!({"owner": "ada", "limit": 7}), "named fields");
        }
    }

    #[test]
    fn header_then_data_into_makes_the_same_bytes_as_encode_event() {
        let opened = Opened { owner: "ada".into(), limit: 7 };
        for meta in [Meta::default(), Meta::actor("clerk")] {
            let mut whole = Vec::new();
            let data = encode_data(&opened).expect("encode");
            encode_event(&mut whole, "account-1", 3, "opened", &meta, &data).expect("encode");
            let mut parts = Vec::new();
            encode_event_header(&mut parts, "account-1", 3, "opened", &meta).expect("header");
            assert_eq!(parts.len(), whole.len() - data.len(), "the header is all but the data");
            encode_data_into(&mut parts, &opened).expect("data");
            assert_eq!(parts, whole);
        }
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_sequence() {
        let data = encode_data(&Opened { owner: "ada".into(), limit: 7 }).expect("encode");
        let mut out = Vec::new();
        encode_event(&mut out, "s", 1, "t", &Meta::actor("a"), &data).expect("encode");
        let fixed_end = out.len() - data.len();
        for cut in 0..fixed_end {
            let err = RawEvent::parse(5, 0, &out[..cut]).expect_err("truncated");
            assert!(err.to_string().contains("sequence 5"), "{err}");
        }
    }

    #[test]
    fn wrong_type_names_sequence_and_event_type() {
        let data = encode_data(&serde_json::json!({"x": [1, 2]})).expect("encode");
        let mut out = Vec::new();
        encode_event(&mut out, "s", 1, "moved", &Meta::default(), &data).expect("encode");
        let raw = RawEvent::parse(17, 0, &out).expect("parse");
        let err = raw.decode::<Opened>().expect_err("wrong type");
        let text = err.to_string();
        assert!(text.contains("17") && text.contains("moved"), "{text}");
    }

    #[test]
    fn version_can_be_set_after_encoding() {
        let mut out = Vec::new();
        encode_event(&mut out, "s", 0, "t", &Meta::default(), &[0x80]).expect("encode");
        set_version(&mut out, 77);
        assert_eq!(RawEvent::parse(1, 0, &out).expect("parse").version, 77);
    }

    #[test]
    fn limits_are_enforced() {
        let mut out = Vec::new();
        assert!(encode_event(&mut out, "", 1, "t", &Meta::default(), &[]).is_err());
        assert!(encode_event(&mut out, "s", 1, "", &Meta::default(), &[]).is_err());
        let long = "x".repeat(STREAM_NAME_BYTES_MAX + 1);
        assert!(encode_event(&mut out, &long, 1, "t", &Meta::default(), &[]).is_err());
    }
}
