//! Keeps one outgoing RTP stream continuous while its source changes (RFC 3550 §5.1, §8.2).
//!
//! A subscriber's track has one SSRC, one sequence space and one timeline for its whole life,
//! while the presenter behind it may reconnect (a new WHIP session: new SSRC, random sequence
//! numbers and timestamps) or the program may switch to another presenter. When the source SSRC
//! changes, the rewriter re-bases sequence numbers to follow on from the last one sent, and
//! timestamps to follow on by the wall-clock time that passed, so the receiver's jitter buffer
//! sees one stream with a gap, not a jump.

use std::time::Instant;

/// The sequence number and timestamp to put on one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub sequence_number: u16,
    pub timestamp: u32,
}

#[derive(Debug, Clone)]
pub struct RtpRewriter {
    clock_rate: u32,
    source_ssrc: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    /// Highest outgoing sequence number and the timestamp/instant of the newest packet sent.
    last_out: Option<(u16, u32, Instant)>,
}

impl RtpRewriter {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, source_ssrc: None, seq_offset: 0, ts_offset: 0, last_out: None }
    }

    /// Whether `ssrc` differs from the source currently forwarded.
    pub fn is_new_source(&self, ssrc: u32) -> bool {
        self.source_ssrc != Some(ssrc)
    }

    /// Maps one incoming packet of source `ssrc` to the outgoing stream.
    pub fn rewrite(&mut self, ssrc: u32, sequence_number: u16, timestamp: u32, now: Instant) -> Rewritten {
        if self.is_new_source(ssrc) {
            self.source_ssrc = Some(ssrc);
            if let Some((last_seq, last_ts, last_at)) = self.last_out {
                let elapsed = now.saturating_duration_since(last_at);
                let ticks = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000).max(1);
                let next_ts = last_ts.wrapping_add(ticks as u32);
                self.seq_offset = last_seq.wrapping_add(1).wrapping_sub(sequence_number);
                self.ts_offset = next_ts.wrapping_sub(timestamp);
            }
        }
        let out = Rewritten {
            sequence_number: sequence_number.wrapping_add(self.seq_offset),
            timestamp: timestamp.wrapping_add(self.ts_offset),
        };
        let newer = match self.last_out {
            None => true,
            Some((last_seq, _, _)) => {
                let delta = out.sequence_number.wrapping_sub(last_seq);
                delta != 0 && delta < 0x8000
            }
        };
        if newer {
            self.last_out = Some((out.sequence_number, out.timestamp, now));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_source_passes_through() {
        let mut r = RtpRewriter::new(90_000);
        let t0 = Instant::now();
        assert_eq!(r.rewrite(1, 500, 9000, t0), Rewritten { sequence_number: 500, timestamp: 9000 });
        assert_eq!(r.rewrite(1, 501, 12000, t0), Rewritten { sequence_number: 501, timestamp: 12000 });
    }

    #[test]
    fn a_new_source_continues_sequence_and_time() {
        let mut r = RtpRewriter::new(90_000);
        let t0 = Instant::now();
        r.rewrite(1, 65535, 100, t0);
        // Reordered packet of the old source does not move the anchor.
        r.rewrite(1, 65534, 100, t0);
        let t1 = t0 + Duration::from_millis(500);
        let out = r.rewrite(2, 7, 4_000_000_000, t1);
        assert_eq!(out, Rewritten { sequence_number: 0, timestamp: 100 + 45_000 });
        let out = r.rewrite(2, 8, 4_000_003_000, t1);
        assert_eq!(out, Rewritten { sequence_number: 1, timestamp: 100 + 48_000 });
    }
}
