//! EventTime: the Forward protocol's nanosecond timestamp, msgpack ext type 0 carrying a
//! big-endian u32 of seconds then a u32 of nanoseconds. Decoding also takes what real
//! clients send instead (ext8 form, plain integer seconds, float seconds); encoding always
//! writes the canonical fixext8.

use rmp::Marker;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ForwardError;
use super::reader::{Reader, wrong_type};

/// The msgpack ext type the spec assigns to EventTime.
pub const EVENT_TIME_EXT_TYPE: i8 = 0;
/// Bytes of an EventTime payload: u32 seconds + u32 nanoseconds.
pub(crate) const EVENT_TIME_PAYLOAD_BYTES: usize = 8;
/// Bytes of an encoded EventTime: fixext8 marker, type, payload.
pub const EVENT_TIME_ENCODED_BYTES: usize = 2 + EVENT_TIME_PAYLOAD_BYTES;
/// Nanoseconds in one second; nanoseconds must stay below it.
pub const NANOSECONDS_PER_SECOND: u32 = 1_000_000_000;

/// A record's timestamp: seconds since the Unix epoch and nanoseconds within the second.
///
/// Why its own type rather than a `Duration`: the wire field is exactly two u32s, so the
/// type makes the range (until 2106) and the nanosecond invariant explicit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime {
    /// Seconds since the Unix epoch.
    pub seconds: u32,
    /// Nanoseconds within the second, below `NANOSECONDS_PER_SECOND`.
    pub nanoseconds: u32,
}

impl EventTime {
    /// A time from its parts; `None` if nanoseconds are a second or more.
    pub fn new(seconds: u32, nanoseconds: u32) -> Option<Self> {
        (nanoseconds < NANOSECONDS_PER_SECOND).then_some(Self { seconds, nanoseconds })
    }

    /// A time from nanoseconds since the epoch; `None` past the u32 seconds range.
    pub(crate) fn from_unix_nanoseconds(unix_nanoseconds: u64) -> Option<Self> {
        let seconds = u32::try_from(unix_nanoseconds / u64::from(NANOSECONDS_PER_SECOND)).ok()?;
        let nanoseconds = (unix_nanoseconds % u64::from(NANOSECONDS_PER_SECOND)) as u32;
        Some(Self { seconds, nanoseconds })
    }

    /// Nanoseconds since the epoch (what OTLP's `time_unix_nano` wants).
    #[cfg(test)]
    pub(crate) fn unix_nanoseconds(self) -> u64 {
        u64::from(self.seconds) * u64::from(NANOSECONDS_PER_SECOND) + u64::from(self.nanoseconds)
    }

    /// Appends the canonical fixext8 form.
    pub fn encode(self, out: &mut Vec<u8>) {
        assert!(self.nanoseconds < NANOSECONDS_PER_SECOND);
        out.push(Marker::FixExt8.to_u8());
        out.push(EVENT_TIME_EXT_TYPE as u8);
        out.extend_from_slice(&self.seconds.to_be_bytes());
        out.extend_from_slice(&self.nanoseconds.to_be_bytes());
    }

    /// Decodes a time as Fluentd's in_forward reads it: ext type 0 (fixext8 or ext8/16/32
    /// holding 8 bytes), an integer, or a float, with the form it arrived in — Fluentd
    /// treats a float as an invalid event time (FIDELITY.md, Aggregator). A number outside
    /// the u32 seconds EventTime holds is saturated and flagged, not refused: Fluentd keeps
    /// any Ruby Integer or Float, so refusing it here would lose the frame's other events.
    pub fn decode(reader: &mut Reader<'_>) -> Result<WireTime, ForwardError> {
        const WHAT: &str = "time";
        let marker = reader.read_marker(WHAT)?;
        let ext_payload_bytes = match marker {
            Marker::FixExt1 => Some(1),
            Marker::FixExt2 => Some(2),
            Marker::FixExt4 => Some(4),
            Marker::FixExt8 => Some(8),
            Marker::FixExt16 => Some(16),
            Marker::Ext8 => Some(reader.read_be(1, WHAT)?),
            Marker::Ext16 => Some(reader.read_be(2, WHAT)?),
            Marker::Ext32 => Some(reader.read_be(4, WHAT)?),
            _ => None,
        };
        if let Some(payload_bytes) = ext_payload_bytes {
            let ext_type = reader.take(1, WHAT)?[0] as i8;
            if ext_type != EVENT_TIME_EXT_TYPE {
                return Err(ForwardError::EventTimeExtType { ext_type });
            }
            if payload_bytes != EVENT_TIME_PAYLOAD_BYTES as u64 {
                return Err(ForwardError::EventTimeLength { got: payload_bytes as u32 });
            }
            let seconds = reader.read_be(4, WHAT)? as u32;
            let nanoseconds = reader.read_be(4, WHAT)? as u32;
            let time = Self::new(seconds, nanoseconds).ok_or(ForwardError::EventTimeNanoseconds { nanoseconds })?;
            return Ok(WireTime { time, form: TimeForm::EventTime, saturated: false });
        }
        match marker {
            Marker::F32 => {
                let value = f32::from_bits(reader.read_be(4, WHAT)? as u32);
                Ok(Self::from_float_seconds(f64::from(value)))
            }
            Marker::F64 => Ok(Self::from_float_seconds(f64::from_bits(reader.read_be(8, WHAT)?))),
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::U64
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => Ok(Self::from_integer_seconds(reader.read_int_after(marker, WHAT)?)),
            other => Err(wrong_type(WHAT, "EventTime (ext type 0) or int", other)),
        }
    }

    /// Integer seconds, as many clients send; saturated into the u32 range.
    fn from_integer_seconds(value: i128) -> WireTime {
        let seconds = value.clamp(0, i128::from(u32::MAX)) as u32;
        let saturated = i128::from(seconds) != value;
        WireTime { time: Self { seconds, nanoseconds: 0 }, form: TimeForm::Integer, saturated }
    }

    /// Float seconds (fluent-logger clients); nanoseconds rounded down, saturated into the
    /// u32 range (NaN reads as 0, flagged).
    fn from_float_seconds(value: f64) -> WireTime {
        let in_range = value.is_finite() && (0.0..4_294_967_296.0).contains(&value);
        let time = if in_range {
            let seconds = value.floor();
            let nanoseconds = (((value - seconds) * 1e9) as u32).min(NANOSECONDS_PER_SECOND - 1);
            Self { seconds: seconds as u32, nanoseconds }
        } else if value >= 4_294_967_296.0 {
            Self { seconds: u32::MAX, nanoseconds: 0 }
        } else {
            Self::default()
        };
        WireTime { time, form: TimeForm::Float, saturated: !in_range }
    }
}

/// The msgpack type an event's time arrived as: Fluentd's in_forward accepts an Integer or
/// an EventTime and calls anything else (a Float) an invalid event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeForm {
    /// Ext type 0.
    EventTime,
    /// A msgpack integer (seconds).
    Integer,
    /// A msgpack float (fluent-logger sends seconds, or milliseconds with `milliseconds`).
    Float,
}

/// A time as decoded from the wire: the value, the form, and whether the value lay outside
/// what an EventTime holds (then `time` is the nearest end of the range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireTime {
    /// The time, saturated into 1970 ..= 2106.
    pub time: EventTime,
    /// How it was encoded.
    pub form: TimeForm,
    /// The wire value lay outside the u32 seconds range (or was not a number).
    pub saturated: bool,
}

/// rmp-serde's data model for a msgpack ext: a newtype named `_ExtStruct` around
/// `(type, bytes)`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "_ExtStruct")]
struct ExtStruct((i8, serde_bytes::ByteBuf));

/// Serializes as ext type 0 under rmp-serde, so an `EventTime` inside any serde type (a
/// stored chunk, a test record) is written exactly as on the wire.
impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut payload = [0u8; EVENT_TIME_PAYLOAD_BYTES];
        payload[..4].copy_from_slice(&self.seconds.to_be_bytes());
        payload[4..].copy_from_slice(&self.nanoseconds.to_be_bytes());
        let ext = (EVENT_TIME_EXT_TYPE, serde_bytes::Bytes::new(&payload));
        serializer.serialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, &ext)
    }
}

/// Deserializes the ext type 0 form only (use `EventTime::decode` on the wire, which also
/// takes integers and floats).
impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let ExtStruct((ext_type, payload)) = ExtStruct::deserialize(deserializer)?;
        if ext_type != EVENT_TIME_EXT_TYPE {
            return Err(D::Error::custom(ForwardError::EventTimeExtType { ext_type }));
        }
        let payload: [u8; EVENT_TIME_PAYLOAD_BYTES] = payload
            .as_slice()
            .try_into()
            .map_err(|_| D::Error::custom(ForwardError::EventTimeLength { got: payload.len() as u32 }))?;
        let seconds = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let nanoseconds = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        Self::new(seconds, nanoseconds)
            .ok_or_else(|| D::Error::custom(ForwardError::EventTimeNanoseconds { nanoseconds }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_writes_the_same_fixext8_and_reads_it_back() {
        let time = EventTime { seconds: 1_764_340_000, nanoseconds: 42 };
        let mut wire = Vec::new();
        time.encode(&mut wire);
        assert_eq!(rmp_serde::to_vec(&time).unwrap(), wire);
        assert_eq!(rmp_serde::from_slice::<EventTime>(&wire).unwrap(), time);
        let short = [0xd6, 0x00, 0, 0, 0, 1];
        let error = rmp_serde::from_slice::<EventTime>(&short).unwrap_err().to_string();
        assert!(error.contains("must have 8 bytes, got 4"), "{error}");
    }

    fn decode_wire(bytes: &[u8]) -> Result<WireTime, ForwardError> {
        let mut reader = Reader::new(bytes);
        let time = EventTime::decode(&mut reader)?;
        reader.expect_end("time")?;
        Ok(time)
    }

    fn decode(bytes: &[u8]) -> Result<EventTime, ForwardError> {
        decode_wire(bytes).map(|wire| wire.time)
    }

    #[test]
    fn fixext8_round_trips() {
        let time = EventTime::new(1_700_000_000, 123_456_789).unwrap();
        let mut out = Vec::new();
        time.encode(&mut out);
        assert_eq!(out.len(), EVENT_TIME_ENCODED_BYTES);
        assert_eq!(out[..2], [0xd7, 0x00]);
        assert_eq!(decode(&out), Ok(time));
    }

    #[test]
    fn ext8_form_and_integers_and_floats_are_accepted() {
        let ext8 = [0xc7, 0x08, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x05];
        assert_eq!(decode(&ext8), Ok(EventTime { seconds: 10, nanoseconds: 5 }));
        assert_eq!(decode(&[0xce, 0x65, 0x53, 0xf1, 0x00]), Ok(EventTime { seconds: 0x6553_f100, nanoseconds: 0 }));
        assert_eq!(decode(&[0x07]), Ok(EventTime { seconds: 7, nanoseconds: 0 }));
        let float = [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]; // 1.5
        assert_eq!(decode(&float), Ok(EventTime { seconds: 1, nanoseconds: 500_000_000 }));
    }

    #[test]
    fn broken_times_name_the_rule() {
        let short = [0xd6, 0x00, 0, 0, 0, 1];
        assert_eq!(decode(&short).unwrap_err().to_string(), "EventTime ext type 0 must have 8 bytes, got 4");
        let wrong_type = [0xd7, 0x05, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode(&wrong_type), Err(ForwardError::EventTimeExtType { ext_type: 5 }));
        let nanos = [0xd7, 0x00, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&nanos), Err(ForwardError::EventTimeNanoseconds { nanoseconds: u32::MAX }));
        assert_eq!(
            decode(&[0xa1, b'x']).unwrap_err().to_string(),
            "time must be EventTime (ext type 0) or int, got str"
        );
    }

    #[test]
    fn numbers_outside_an_event_time_are_saturated_and_flagged_not_refused() {
        let negative = decode_wire(&[0xff]).unwrap();
        assert_eq!((negative.time.seconds, negative.form, negative.saturated), (0, TimeForm::Integer, true));
        let huge = decode_wire(&[0xcf, 1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((huge.time.seconds, huge.form, huge.saturated), (u32::MAX, TimeForm::Integer, true));
        // fluent-logger's `milliseconds: true`: Date.now() as a float64 millisecond count.
        let mut millis = vec![0xcb];
        millis.extend_from_slice(&1_764_340_000_123f64.to_bits().to_be_bytes());
        let wire = decode_wire(&millis).unwrap();
        assert_eq!((wire.time.seconds, wire.form, wire.saturated), (u32::MAX, TimeForm::Float, true));
        let in_range = decode_wire(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((in_range.form, in_range.saturated), (TimeForm::Float, false));
        let nan = decode_wire(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!((nan.time, nan.saturated), (EventTime::default(), true));
        let ext = decode_wire(&[0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!((ext.form, ext.saturated), (TimeForm::EventTime, false));
    }

    #[test]
    fn unix_nanoseconds_round_trip() {
        let time = EventTime::from_unix_nanoseconds(1_700_000_000_987_654_321).unwrap();
        assert_eq!(time, EventTime { seconds: 1_700_000_000, nanoseconds: 987_654_321 });
        assert_eq!(time.unix_nanoseconds(), 1_700_000_000_987_654_321);
        assert_eq!(EventTime::new(1, NANOSECONDS_PER_SECOND), None);
    }
}
