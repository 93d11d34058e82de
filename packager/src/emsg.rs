//! The DASH event message box, version 1 (ISO/IEC 23009-1 §5.10.3.3 `DASHEventMessageBox`),
//! as CMAF carries it (ISO/IEC 23000-19 §7.4.5: `emsg` boxes come before the `moof` of the
//! fragment or chunk), holding ID3 per AOM "Carriage of ID3 Timed Metadata in CMAF" v1.0
//! (scheme [`ID3_SCHEME`], version 1 only, `message_data` a complete ID3v2 tag).
//!
//! Version 1 carries an absolute `presentation_time` (64 bits, in `timescale`) on the media
//! timeline of the tracks, the one their `tfdt`s are on.
//!
//! How hls.js 1.x reads it (1.7.4: `demux/mp4demuxer.ts` `extractID3Track`,
//! `utils/mp4-tools.ts` `parseEmsg`, `remux/mp4-remuxer.ts`
//! `flushTextTrackMetadataCueSamples`, `controller/id3-track-controller.ts`):
//! - It looks for top-level `emsg` boxes in each fragment (part or segment) it loads, and keeps
//!   those whose scheme matches `/\/emsg[-/]ID3/i`. `value` is ignored.
//! - Version 1: `presentation_time / timescale` seconds; then, like every sample it remuxes,
//!   minus the stream's initPTS (the first fragment's `tfdt` in seconds). So the cue starts on
//!   the media element's clock exactly where the video frame with `tfdt == presentation_time`
//!   (same timescale) plays. Writing the video timescale (90 kHz) makes `presentation_time` a
//!   video decode time.
//! - Duration: `0xFFFFFFFF` → open-ended (and any open-ended cue of the same type is closed at
//!   the next cue's start); anything ≤ 1 ms is treated as open-ended too; otherwise
//!   `event_duration / timescale`.
//! - Each ID3 frame of `message_data` becomes one cue (`VTTCue`) on a "metadata" text track,
//!   `cue.value = { key, info, data }`, `cue.type = "https://aomedia.org/emsg/ID3"`; only with
//!   `enableEmsgMetadataCues` and `enableID3MetadataCues` (both default true).
//! - It does not deduplicate by `id`: a viewer that loads both a part and the segment holding
//!   it would see the event twice; the event id inside the payload is the way to tell.

use bytes::Bytes;

use crate::fmp4::{u32be, u64be, write_full_box};

/// The AOM scheme for ID3 in `emsg`.
pub const ID3_SCHEME: &str = "https://aomedia.org/emsg/ID3";
/// The `value` of townhall's events (a URI relative to the scheme; it scopes `id`).
pub const EVENT_VALUE: &str = "townhall";
/// `event_duration` of an event whose duration is unknown.
pub const UNKNOWN_DURATION: u32 = 0xFFFF_FFFF;

/// One event message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// Ticks per second of `presentation_time` and `event_duration`.
    pub timescale: u32,
    /// On the media timeline (the tracks' `tfdt`), in `timescale`.
    pub presentation_time: u64,
    /// In `timescale`; [`UNKNOWN_DURATION`] if unknown.
    pub event_duration: u32,
    /// Identifies the event within (`scheme_id_uri`, `value`): a repeat with the same id is the
    /// same event.
    pub id: u32,
    /// A NUL-terminated string in the box: a NUL inside ends it there.
    pub scheme_id_uri: String,
    pub value: String,
    pub message_data: Bytes,
}

impl EventMessage {
    /// An ID3 event: scheme [`ID3_SCHEME`], value [`EVENT_VALUE`], `tag` a complete ID3 tag.
    pub fn id3(id: u32, timescale: u32, presentation_time: u64, event_duration: u32, tag: Bytes) -> Self {
        Self {
            timescale,
            presentation_time,
            event_duration,
            id,
            scheme_id_uri: ID3_SCHEME.to_owned(),
            value: EVENT_VALUE.to_owned(),
            message_data: tag,
        }
    }
}

fn write_c_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    out.extend_from_slice(&bytes[..end]);
    out.push(0);
}

/// Writes `message` as an `emsg` box, version 1.
pub fn write_emsg(out: &mut Vec<u8>, message: &EventMessage) {
    write_full_box(out, b"emsg", 1, 0, |out| {
        u32be(out, message.timescale);
        u64be(out, message.presentation_time);
        u32be(out, message.event_duration);
        u32be(out, message.id);
        write_c_string(out, &message.scheme_id_uri);
        write_c_string(out, &message.value);
        out.extend_from_slice(&message.message_data);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Decode, Emsg, EmsgTimestamp};

    #[test]
    fn an_emsg_v1_parses_back_with_an_independent_strict_parser() {
        let tag = Bytes::from(crate::id3::event_tag("{}").unwrap());
        let message = EventMessage::id3(42, 90_000, (1u64 << 33) + 7, UNKNOWN_DURATION, tag.clone());
        let mut out = Vec::new();
        write_emsg(&mut out, &message);
        let mut input = std::io::Cursor::new(&out[..]);
        let emsg = Emsg::decode(&mut input).unwrap();
        assert_eq!(input.position() as usize, out.len());
        assert_eq!(
            emsg,
            Emsg {
                timescale: 90_000,
                presentation_time: EmsgTimestamp::Absolute((1 << 33) + 7),
                event_duration: 0xFFFF_FFFF,
                id: 42,
                scheme_id_uri: ID3_SCHEME.into(),
                value: EVENT_VALUE.into(),
                message_data: tag.to_vec(),
            }
        );
        // The fixed layout: size, "emsg", version 1, flags 0, then timescale.
        assert_eq!(&out[4..12], b"emsg\x01\x00\x00\x00");
        assert_eq!(&out[12..16], &90_000u32.to_be_bytes());
    }

    #[test]
    fn a_nul_inside_a_string_ends_it() {
        let mut message = EventMessage::id3(1, 1000, 0, 0, Bytes::from_static(b"data"));
        message.value = "a\0b".into();
        let mut out = Vec::new();
        write_emsg(&mut out, &message);
        let emsg = Emsg::decode(&mut std::io::Cursor::new(&out[..])).unwrap();
        assert_eq!(emsg.value, "a");
        assert_eq!(emsg.message_data, b"data");
    }
}
