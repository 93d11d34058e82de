//! The packager's input contract: `Frame` (one access unit of one track) and `TrackInfo`.
//!
//! Timestamps are in the track's own timebase (the RTP clock rate), extended to 64 bits so they
//! never wrap. `capture_time_ms` is program time: milliseconds since the Unix epoch on the
//! sender's clock, mapped from RTCP Sender Reports (RFC 3550 §6.4.1), or the arrival time
//! until the first report is seen. H.264 payloads are AVCC (4-byte big-endian length
//! prefixes, ISO/IEC 14496-15 §5.3); Opus payloads are single raw Opus packets (RFC 7587).

use bytes::Bytes;

/// Whether a track carries audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

/// The codec of a track, with what a muxer needs to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264 with its current parameter sets (without start codes or length prefixes).
    H264 { sps: Bytes, pps: Bytes },
    /// Opus at 48 kHz.
    Opus { channels: u8 },
}

impl Codec {
    /// The RFC 6381 `CODECS` string (`avc1.PPCCLL`, `opus`).
    pub fn rfc6381(&self) -> String {
        match self {
            Codec::H264 { sps, .. } if sps.len() >= 4 => {
                format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])
            }
            Codec::H264 { .. } => "avc1".to_owned(),
            Codec::Opus { .. } => "opus".to_owned(),
        }
    }
}

/// What is known about a track: its id within the room, kind, codec and timebase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Stable id of the track within its room: `{publisher}/{audio|video}`.
    pub id: String,
    pub kind: TrackKind,
    pub codec: Codec,
    /// Ticks per second of `pts`/`dts` (90 000 for video, 48 000 for Opus).
    pub timebase: u32,
}

/// One access unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// `TrackInfo::id` of the track this frame belongs to.
    pub track_id: String,
    /// Presentation time in the track's timebase (RTP time extended to 64 bits).
    pub pts: u64,
    /// Decode time; equal to `pts` for streams without B-frames (WebRTC never sends them).
    pub dts: u64,
    /// A random access point: an IDR picture (with SPS/PPS in `TrackInfo`), or any audio frame.
    pub keyframe: bool,
    /// Something was lost before this frame (sequence gap, dropped partial frame, new source).
    pub discontinuity: bool,
    /// Program time of capture, in milliseconds since the Unix epoch.
    pub capture_time_ms: i64,
    /// `capture_time_ms` comes from an RTCP Sender Report (the sender's clock), not from the
    /// arrival time: only then can tracks be aligned with each other.
    pub wall_clock_synced: bool,
    /// AVCC for H.264, one raw packet for Opus.
    pub payload: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6381_names_profile_and_level_from_sps() {
        let codec =
            Codec::H264 { sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f, 0x00]), pps: Bytes::from_static(&[0x68]) };
        assert_eq!(codec.rfc6381(), "avc1.42c01f");
        assert_eq!(Codec::Opus { channels: 2 }.rfc6381(), "opus");
    }
}
