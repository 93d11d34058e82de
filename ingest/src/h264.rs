//! H.264 RTP depacketizer: RFC 6184 §5.6 (single NAL unit), §5.7.1 (STAP-A), §5.8 (FU-A),
//! non-interleaved and single-NAL-unit packetization modes (0 and 1).
//!
//! Packets go in with [`H264Depacketizer::push`]; whole access units come out of
//! [`H264Depacketizer::pull`] in AVCC form (4-byte lengths, ISO/IEC 14496-15 §5.3.2), with the
//! parameter sets taken out and kept aside: a muxer puts them in its `avcC` box and learns of a
//! change through [`AccessUnit::new_parameters`].
//!
//! Decided here, where the RFC leaves it open:
//! - An access unit ends at the RTP marker bit (§5.1), or when a packet with another timestamp
//!   arrives (a lost marker).
//! - A sequence gap inside an access unit drops that access unit whole (a decoder cannot use a
//!   picture with missing slices) and flags the next one as a discontinuity.
//! - STAP-B, MTAP16/24 and FU-B belong to interleaved mode (2), which we never negotiate: such
//!   packets are refused with an error the caller counts.
//! - AUD (9), end-of-sequence/stream (10, 11) and filler (12) NAL units are dropped: they mean
//!   nothing inside an MP4 sample.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

/// The parts of an RTP packet the depacketizer reads.
#[derive(Debug, Clone, Copy)]
pub struct RtpRef<'a> {
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

/// One depacketized access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// RTP timestamp (90 kHz) shared by all packets of the access unit.
    pub rtp_timestamp: u32,
    /// Contains an IDR slice (NAL type 5).
    pub keyframe: bool,
    /// Something was lost before this access unit.
    pub discontinuity: bool,
    /// Set when SPS or PPS changed with (or before) this access unit: `(sps, pps)`.
    pub new_parameters: Option<(Bytes, Bytes)>,
    /// NAL units in AVCC form, parameter sets excluded.
    pub data: Bytes,
}

/// Why a packet was refused. The depacketizer stays usable after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepacketizeError {
    #[error("empty RTP payload (seq {0})")]
    Empty(u16),
    #[error("NAL unit type {nal_type} needs interleaved mode, which is not negotiated (seq {seq})")]
    Interleaved { nal_type: u8, seq: u16 },
    #[error("reserved NAL unit type {nal_type} (seq {seq})")]
    Reserved { nal_type: u8, seq: u16 },
    #[error("truncated {what} (seq {seq})")]
    Truncated { what: &'static str, seq: u16 },
    #[error("FU-A continuation without its start (seq {0})")]
    FragmentWithoutStart(u16),
}

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

/// The RFC 6184 depacketizer state machine.
#[derive(Debug, Default)]
pub struct H264Depacketizer {
    /// Sequence number of the last packet accepted.
    last_seq: Option<u16>,
    /// Timestamp of the access unit being assembled.
    current_ts: Option<u32>,
    /// NAL units of the access unit being assembled, AVCC framed.
    current: BytesMut,
    current_keyframe: bool,
    /// The access unit being assembled lost a packet: drop it at its end.
    current_broken: bool,
    /// A FU-A being reassembled: the NAL unit so far (header included).
    fragment: Option<BytesMut>,
    /// Flag the next emitted access unit as a discontinuity.
    pending_discontinuity: bool,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    parameters_changed: bool,
    ready: VecDeque<AccessUnit>,
    /// Access units dropped because a packet of theirs was lost.
    pub dropped_access_units: u64,
}

impl H264Depacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current parameter sets, once both were seen.
    pub fn parameters(&self) -> Option<(Bytes, Bytes)> {
        Some((self.sps.clone()?, self.pps.clone()?))
    }

    /// Takes one RTP packet. Call [`pull`](Self::pull) until it returns `None` after each push:
    /// a packet can finish up to two access units (one whose marker was lost, and its own).
    pub fn push(&mut self, pkt: RtpRef<'_>) -> Result<(), DepacketizeError> {
        let seq = pkt.sequence_number;
        if let Some(last) = self.last_seq {
            let delta = seq.wrapping_sub(last);
            if delta == 0 || delta > 0x8000 {
                // A duplicate or a late packet: its access unit is gone already.
                return Ok(());
            }
            if delta > 1 {
                self.on_loss();
            }
        }
        self.last_seq = Some(seq);

        if self.current_ts.is_some_and(|ts| ts != pkt.timestamp) {
            // The previous access unit never saw its marker bit.
            self.finish_access_unit();
        }
        self.current_ts = Some(pkt.timestamp);

        let result = self.push_payload(pkt);
        if result.is_err() {
            self.current_broken = true;
        }
        if pkt.marker {
            self.finish_access_unit();
        }
        result
    }

    /// The next complete access unit, if one is ready.
    pub fn pull(&mut self) -> Option<AccessUnit> {
        self.ready.pop_front()
    }

    fn on_loss(&mut self) {
        self.fragment = None;
        self.pending_discontinuity = true;
        if self.current_ts.is_some() {
            self.current_broken = true;
        }
    }

    fn push_payload(&mut self, pkt: RtpRef<'_>) -> Result<(), DepacketizeError> {
        let seq = pkt.sequence_number;
        let payload = pkt.payload;
        let Some(&header) = payload.first() else {
            return Err(DepacketizeError::Empty(seq));
        };
        let nal_type = header & 0x1f;
        match nal_type {
            1..=23 => {
                self.fragment = None;
                self.add_nal(payload);
                Ok(())
            }
            NAL_STAP_A => {
                self.fragment = None;
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    if rest.len() < 2 {
                        return Err(DepacketizeError::Truncated { what: "STAP-A size", seq });
                    }
                    let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    rest = &rest[2..];
                    if size == 0 || size > rest.len() {
                        return Err(DepacketizeError::Truncated { what: "STAP-A unit", seq });
                    }
                    self.add_nal(&rest[..size]);
                    rest = &rest[size..];
                }
                Ok(())
            }
            NAL_FU_A => {
                if payload.len() < 3 {
                    return Err(DepacketizeError::Truncated { what: "FU-A", seq });
                }
                let fu_header = payload[1];
                let start = fu_header & 0x80 != 0;
                let end = fu_header & 0x40 != 0;
                if start {
                    let mut nal = BytesMut::with_capacity(payload.len() * 8);
                    nal.put_u8((header & 0xe0) | (fu_header & 0x1f));
                    nal.extend_from_slice(&payload[2..]);
                    self.fragment = Some(nal);
                } else {
                    let Some(nal) = self.fragment.as_mut() else {
                        if self.current_broken {
                            // The start was lost: this access unit is being dropped already.
                            return Ok(());
                        }
                        return Err(DepacketizeError::FragmentWithoutStart(seq));
                    };
                    nal.extend_from_slice(&payload[2..]);
                }
                if end && let Some(nal) = self.fragment.take() {
                    self.add_nal(&nal);
                }
                Ok(())
            }
            25..=27 | 29 => Err(DepacketizeError::Interleaved { nal_type, seq }),
            _ => Err(DepacketizeError::Reserved { nal_type, seq }),
        }
    }

    fn add_nal(&mut self, nal: &[u8]) {
        let nal_type = nal[0] & 0x1f;
        match nal_type {
            NAL_SPS => {
                if self.sps.as_deref() != Some(nal) {
                    self.sps = Some(Bytes::copy_from_slice(nal));
                    self.parameters_changed = true;
                }
            }
            NAL_PPS => {
                if self.pps.as_deref() != Some(nal) {
                    self.pps = Some(Bytes::copy_from_slice(nal));
                    self.parameters_changed = true;
                }
            }
            9..=12 => {}
            _ => {
                if nal_type == NAL_IDR {
                    self.current_keyframe = true;
                }
                self.current.put_u32(nal.len() as u32);
                self.current.extend_from_slice(nal);
            }
        }
    }

    fn finish_access_unit(&mut self) {
        let Some(rtp_timestamp) = self.current_ts.take() else {
            return;
        };
        self.fragment = None;
        let data = std::mem::take(&mut self.current).freeze();
        let keyframe = std::mem::take(&mut self.current_keyframe);
        let broken = std::mem::take(&mut self.current_broken);
        if broken {
            self.dropped_access_units += 1;
            self.pending_discontinuity = true;
            return;
        }
        if data.is_empty() {
            // Parameter sets alone (or only dropped NAL types): nothing to show.
            return;
        }
        if keyframe && self.parameters().is_none() {
            // An IDR we cannot describe to a decoder yet.
            self.dropped_access_units += 1;
            self.pending_discontinuity = true;
            return;
        }
        let new_parameters =
            if self.parameters_changed { self.parameters().inspect(|_| self.parameters_changed = false) } else { None };
        self.ready.push_back(AccessUnit {
            rtp_timestamp,
            keyframe,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            new_parameters,
            data,
        });
    }
}

/// Whether an RTP payload starts an IDR picture or carries parameter sets: where an SFU may
/// start forwarding a video stream to a new subscriber.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1f {
        NAL_IDR | NAL_SPS | NAL_PPS => true,
        NAL_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                rest = &rest[2..];
                if size == 0 || size > rest.len() {
                    return false;
                }
                if matches!(rest[0] & 0x1f, NAL_IDR | NAL_SPS) {
                    return true;
                }
                rest = &rest[size..];
            }
            false
        }
        NAL_FU_A => payload.len() >= 2 && payload[1] & 0x80 != 0 && payload[1] & 0x1f == NAL_IDR,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpRef<'_> {
        RtpRef { sequence_number: seq, timestamp: ts, marker, payload }
    }

    fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0x78];
        for nal in nals {
            v.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            v.extend_from_slice(nal);
        }
        v
    }

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for nal in nals {
            v.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            v.extend_from_slice(nal);
        }
        v
    }

    #[test]
    fn stap_a_parameter_sets_then_fu_a_idr_make_one_keyframe() {
        let mut d = H264Depacketizer::new();
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..250).map(|i| i as u8)).collect();
        d.push(pkt(10, 3000, false, &stap_a(&[SPS, PPS]))).unwrap();
        assert!(d.pull().is_none());
        // FU-A: indicator keeps F/NRI (0x60) with type 28, header S/E + type 5.
        let mut first = vec![0x7c, 0x85];
        first.extend_from_slice(&idr[1..120]);
        let mut last = vec![0x7c, 0x45];
        last.extend_from_slice(&idr[120..]);
        d.push(pkt(11, 3000, false, &first)).unwrap();
        d.push(pkt(12, 3000, true, &last)).unwrap();
        let au = d.pull().expect("access unit");
        assert!(au.keyframe);
        assert!(!au.discontinuity);
        assert_eq!(au.rtp_timestamp, 3000);
        assert_eq!(au.new_parameters, Some((Bytes::from_static(SPS), Bytes::from_static(PPS))));
        assert_eq!(&au.data[..], &avcc(&[&idr])[..]);
    }

    #[test]
    fn lost_fragment_drops_the_access_unit_and_flags_the_next() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(1, 0, false, &stap_a(&[SPS, PPS]))).unwrap();
        d.push(pkt(2, 0, true, &[0x65, 1, 2, 3])).unwrap();
        assert!(d.pull().unwrap().keyframe);
        d.push(pkt(3, 3000, false, &[0x7c, 0x81, 9, 9])).unwrap();
        // seq 4 lost
        d.push(pkt(5, 3000, true, &[0x7c, 0x41, 9, 9])).unwrap();
        assert!(d.pull().is_none());
        assert_eq!(d.dropped_access_units, 1);
        d.push(pkt(6, 6000, true, &[0x41, 7, 7])).unwrap();
        let au = d.pull().unwrap();
        assert!(au.discontinuity);
        assert!(!au.keyframe);
        assert_eq!(au.new_parameters, None);
    }

    #[test]
    fn missing_marker_is_closed_by_the_next_timestamp() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(1, 0, false, &stap_a(&[SPS, PPS]))).unwrap();
        d.push(pkt(2, 0, false, &[0x65, 1])).unwrap();
        d.push(pkt(3, 3000, true, &[0x41, 2])).unwrap();
        // The keyframe is finished by the new timestamp, the P frame by its marker.
        let key = d.pull().unwrap();
        assert!(key.keyframe);
        assert_eq!(key.rtp_timestamp, 0);
        let delta = d.pull().unwrap();
        assert_eq!(delta.rtp_timestamp, 3000);
        assert!(!delta.keyframe);
        assert!(d.pull().is_none());
    }

    #[test]
    fn single_nal_mode_zero_frames() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(100, 0, false, SPS)).unwrap();
        d.push(pkt(101, 0, false, PPS)).unwrap();
        d.push(pkt(102, 0, false, &[0x09, 0x10])).unwrap(); // AUD: dropped
        d.push(pkt(103, 0, true, &[0x65, 0xaa])).unwrap();
        let au = d.pull().unwrap();
        assert!(au.keyframe);
        assert_eq!(&au.data[..], &avcc(&[&[0x65, 0xaa]])[..]);
    }

    #[test]
    fn idr_before_parameter_sets_is_dropped() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(1, 0, true, &[0x65, 1])).unwrap();
        assert!(d.pull().is_none());
        assert_eq!(d.dropped_access_units, 1);
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        let mut d = H264Depacketizer::new();
        assert_eq!(d.push(pkt(1, 0, false, &[])), Err(DepacketizeError::Empty(1)));
        assert!(matches!(d.push(pkt(2, 0, false, &[0x78, 0x00])), Err(DepacketizeError::Truncated { .. })));
        assert!(matches!(d.push(pkt(3, 0, false, &[0x78, 0x00, 0x09, 0x67])), Err(DepacketizeError::Truncated { .. })));
        assert!(matches!(d.push(pkt(4, 0, false, &[0x7c])), Err(DepacketizeError::Truncated { .. })));
        let mut fresh = H264Depacketizer::new();
        assert_eq!(fresh.push(pkt(5, 0, false, &[0x7c, 0x05, 1])), Err(DepacketizeError::FragmentWithoutStart(5)));
        assert!(matches!(
            d.push(pkt(6, 0, false, &[0x79, 0x00])),
            Err(DepacketizeError::Interleaved { nal_type: 25, .. })
        ));
        assert!(matches!(d.push(pkt(7, 0, true, &[0x1e])), Err(DepacketizeError::Reserved { nal_type: 30, .. })));
        assert!(d.pull().is_none());
    }

    #[test]
    fn duplicates_and_late_packets_are_ignored() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(1, 0, false, &stap_a(&[SPS, PPS]))).unwrap();
        d.push(pkt(2, 0, true, &[0x65, 1])).unwrap();
        assert!(d.pull().is_some());
        d.push(pkt(2, 0, true, &[0x65, 1])).unwrap();
        d.push(pkt(0, 0, true, &[0x65, 1])).unwrap();
        assert!(d.pull().is_none());
        d.push(pkt(3, 3000, true, &[0x41, 1])).unwrap();
        assert!(!d.pull().unwrap().discontinuity);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut d = H264Depacketizer::new();
        d.push(pkt(65535, 0, false, &stap_a(&[SPS, PPS]))).unwrap();
        d.push(pkt(0, 0, true, &[0x65, 1])).unwrap();
        let au = d.pull().unwrap();
        assert!(au.keyframe && !au.discontinuity);
    }

    #[test]
    fn keyframe_starts_are_recognised() {
        assert!(starts_keyframe(&stap_a(&[SPS, PPS])));
        assert!(starts_keyframe(&[0x7c, 0x85, 0]));
        assert!(!starts_keyframe(&[0x7c, 0x05, 0]));
        assert!(!starts_keyframe(&[0x7c, 0x81, 0]));
        assert!(starts_keyframe(&[0x65, 0]));
        assert!(!starts_keyframe(&[0x41, 0]));
        assert!(!starts_keyframe(&[]));
        assert!(!starts_keyframe(&[0x78, 0xff, 0xff, 0x67]));
    }

    /// Reads a capture written by `whep_load`'s dump: `u16 length + RTP packet` records.
    fn capture(bytes: &[u8]) -> Vec<(u16, u32, bool, Vec<u8>)> {
        let mut packets = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let raw = &rest[2..2 + len];
            rest = &rest[2 + len..];
            let mut header = 12 + 4 * usize::from(raw[0] & 0x0f);
            if raw[0] & 0x10 != 0 {
                header += 4 + 4 * usize::from(u16::from_be_bytes([raw[header + 2], raw[header + 3]]));
            }
            let seq = u16::from_be_bytes([raw[2], raw[3]]);
            let ts = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            packets.push((seq, ts, raw[1] & 0x80 != 0, raw[header..].to_vec()));
        }
        packets
    }

    fn depacketize_capture(bytes: &[u8]) -> (Vec<AccessUnit>, usize) {
        let packets = capture(bytes);
        let markers = packets.iter().filter(|p| p.2).count();
        let mut d = H264Depacketizer::new();
        let mut units = Vec::new();
        for (seq, ts, marker, payload) in &packets {
            d.push(pkt(*seq, *ts, *marker, payload)).expect("real RTP is accepted");
            units.extend(std::iter::from_fn(|| d.pull()));
        }
        assert_eq!(d.dropped_access_units, 0);
        (units, markers)
    }

    fn assert_well_formed(units: &[AccessUnit]) {
        for unit in units {
            let mut rest = &unit.data[..];
            while !rest.is_empty() {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                assert!(len > 0 && len + 4 <= rest.len(), "AVCC length out of bounds");
                assert!(!matches!(rest[4] & 0x1f, 7..=12), "parameter sets and AUDs are kept out");
                rest = &rest[4 + len..];
            }
        }
    }

    #[test]
    fn depacketize_chromium156_stap_a_and_fu_a() {
        let (units, markers) = depacketize_capture(include_bytes!("../../tests/data/chromium156_h264_640x480.rtp"));
        assert_eq!(units.len(), markers, "one access unit per marker bit");
        let first = &units[0];
        assert!(first.keyframe, "the SFU starts a subscriber at a keyframe");
        let (sps, pps) = first.new_parameters.clone().expect("SPS/PPS in the STAP-A");
        assert_eq!(sps[0] & 0x1f, 7);
        assert_eq!(pps[0] & 0x1f, 8);
        assert_eq!(sps[1], 0x42, "Chromium's OpenH264 sends constrained baseline");
        assert!(units[1..].iter().all(|u| !u.keyframe && u.new_parameters.is_none() && !u.discontinuity));
        assert_well_formed(&units);
    }

    #[test]
    fn depacketize_ffmpeg9_libx264_single_nal_and_fu_a() {
        let (units, markers) =
            depacketize_capture(include_bytes!("../../tests/data/ffmpeg9_libx264_baseline_320x180.rtp"));
        assert_eq!(units.len(), markers);
        assert!(units[0].keyframe);
        let (sps, _) = units[0].new_parameters.clone().expect("SPS/PPS in the STAP-A");
        assert_eq!(&sps[1..4], &[0x42, 0xc0, 0x0d], "libx264 baseline, level 1.3 for 320x180");
        // `-g 30` at 30 fps: a second keyframe a second in, with its parameter sets unchanged.
        let keyframes: Vec<usize> = units.iter().enumerate().filter(|(_, u)| u.keyframe).map(|(i, _)| i).collect();
        assert_eq!(keyframes, vec![0, 30]);
        assert!(units[30].new_parameters.is_none(), "same SPS/PPS again is no change");
        assert_well_formed(&units);
    }
}
