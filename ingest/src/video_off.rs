//! A presenter's video turned off by a moderator, on the publishing side: which video RTP
//! packets are held back, and the black pictures ([`townhall_packager::h264_black`]) that take
//! the place of their access units, both on the frame bus (the program, recordings) and as RTP
//! (RFC 6184 §5.6 single NAL unit, §5.8 FU-A) for WHEP subscribers.
//!
//! Decided here:
//! - **Off** takes effect at the next access unit (the first packet with a new RTP timestamp).
//!   The first black picture is an IDR even where the presenter sent a P picture (a decoder
//!   needs nothing before it); the frame keeps its timestamps and its keyframe flag.
//! - **On** takes effect at the presenter's next keyframe (their P pictures refer to pictures
//!   nobody received); the HTTP side asks the presenter for one (PLI) when it turns video on.
//! - Black RTP packets carry the held access unit's timestamp and SSRC. Their sequence numbers
//!   start at the held packets' first one; every later packet of this source is shifted by the
//!   difference in count, so subscribers see one gapless sequence (a real loss stays a gap, and
//!   is recovered as one: NACK, then PLI).
//! - A black keyframe is sent with the presenter's SPS and PPS (and our own PPS, if any) in
//!   front, as encoders do, so a subscriber can start on it.
//! - A stream we cannot write black pictures for (MBAFF, 4:4:4) loses its video while off: no
//!   frame on the bus, nothing forwarded (logged once by the caller).

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use townhall_packager::h264_black::{BlackError, BlackPictures, to_avcc};

/// The largest RTP payload we write (what our subscribers' path takes from publishers).
pub const MAX_PAYLOAD: usize = 1_200;
/// Access units held back but not yet complete, at most (a burst of losses drops the oldest).
const MAX_HELD: usize = 64;
const NAL_FU_A: u8 = 28;

/// What to do with one incoming video packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it, with the sequence number from [`VideoOff::out_seq`].
    Forward,
    /// Hold it back: its access unit will be replaced by a black picture.
    Hold,
}

/// A black picture in place of one held access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blanked {
    /// The frame payload (AVCC) for the frame bus; `None` when the stream cannot be blanked.
    pub avcc: Option<Bytes>,
    /// RTP packets for subscribers, in order: `(sequence number, marker, payload)`.
    pub packets: Vec<(u16, bool, Bytes)>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    timestamp: u32,
    first_seq: u16,
    last_seq: u16,
}

/// The state of one inbound video track.
#[derive(Debug, Default)]
pub struct VideoOff {
    blanking: bool,
    /// The newest packet's sequence number and timestamp.
    last_seq: Option<u16>,
    current_timestamp: Option<u32>,
    held: VecDeque<Held>,
    seq_shift: u16,
    /// The black pictures for the parameter sets they were made from.
    black: Option<((Bytes, Bytes), Result<BlackPictures, BlackError>)>,
}

impl VideoOff {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether access units are being replaced now.
    pub fn is_blanking(&self) -> bool {
        self.blanking
    }

    /// Takes one incoming video packet; `off` is what the moderator wants now, `keyframe_start`
    /// whether the packet starts a keyframe (`h264::starts_keyframe`).
    pub fn on_packet(&mut self, seq: u16, timestamp: u32, keyframe_start: bool, off: bool) -> Verdict {
        if self.last_seq.is_some_and(|last| seq.wrapping_sub(last).wrapping_sub(1) >= 0x8000) {
            // A duplicate or late packet: the depacketizer drops it; it decides nothing here.
            return if self.blanking { Verdict::Hold } else { Verdict::Forward };
        }
        self.last_seq = Some(seq);
        if self.current_timestamp != Some(timestamp) {
            self.current_timestamp = Some(timestamp);
            if off {
                self.blanking = true;
            } else if self.blanking && keyframe_start {
                self.blanking = false;
            }
        }
        if !self.blanking {
            return Verdict::Forward;
        }
        match self.held.back_mut() {
            Some(held) if held.timestamp == timestamp => {
                if seq.wrapping_sub(held.last_seq) < 0x8000 {
                    held.last_seq = seq;
                }
            }
            _ => {
                if self.held.len() == MAX_HELD {
                    self.held.pop_front();
                }
                self.held.push_back(Held { timestamp, first_seq: seq, last_seq: seq });
            }
        }
        Verdict::Hold
    }

    /// The sequence number a forwarded packet goes out with.
    pub fn out_seq(&self, seq: u16) -> u16 {
        seq.wrapping_add(self.seq_shift)
    }

    /// Takes one complete access unit (in the stream's `sps`/`pps`): its black replacement if
    /// its packets were held back, `None` if it was forwarded as it is.
    pub fn on_access_unit(&mut self, timestamp: u32, keyframe: bool, sps: &Bytes, pps: &Bytes) -> Option<Blanked> {
        let at = self.held.iter().position(|h| h.timestamp == timestamp)?;
        // Older held access units never completed (lost packets): their numbers stay a gap.
        let held = self.held.drain(..=at).next_back()?;
        let params = (sps.clone(), pps.clone());
        if self.black.as_ref().is_none_or(|(p, _)| *p != params) {
            let black = BlackPictures::new(sps, pps);
            self.black = Some((params, black));
        }
        let Some((_, Ok(black))) = self.black.as_mut() else {
            return Some(Blanked { avcc: None, packets: Vec::new() });
        };
        let nals = black.next_picture(keyframe);
        let idr = nals.iter().any(|n| n[0] & 0x1f == 5);
        let mut rtp_nals = Vec::with_capacity(nals.len() + 2);
        if idr {
            rtp_nals.push(sps.clone());
            rtp_nals.push(pps.clone());
        }
        rtp_nals.extend(nals.iter().cloned());
        let payloads = packetize(&rtp_nals, MAX_PAYLOAD);
        let first = held.first_seq.wrapping_add(self.seq_shift);
        let held_count = held.last_seq.wrapping_sub(held.first_seq).wrapping_add(1);
        self.seq_shift = self.seq_shift.wrapping_add((payloads.len() as u16).wrapping_sub(held_count));
        let last = payloads.len() - 1;
        let packets = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| (first.wrapping_add(i as u16), i == last, payload))
            .collect();
        Some(Blanked { avcc: Some(to_avcc(&nals)), packets })
    }

    /// Why the stream cannot be blanked, if it cannot.
    pub fn error(&self) -> Option<&BlackError> {
        self.black.as_ref().and_then(|(_, b)| b.as_ref().err())
    }
}

/// RTP payloads for NAL units (RFC 6184, packetization mode 1): a NAL unit that fits is sent
/// alone, a larger one in FU-A fragments.
pub fn packetize(nals: &[Bytes], max_payload: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    for nal in nals {
        if nal.len() <= max_payload {
            out.push(nal.clone());
            continue;
        }
        let header = nal[0];
        let body = &nal[1..];
        let chunk = max_payload - 2;
        let count = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let mut p = BytesMut::with_capacity(piece.len() + 2);
            p.put_u8((header & 0xe0) | NAL_FU_A);
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == count { 0x40 } else { 0 };
            p.put_u8(start | end | (header & 0x1f));
            p.extend_from_slice(piece);
            out.push(p.freeze());
        }
    }
    out
}

#[cfg(test)]
mod tests;
