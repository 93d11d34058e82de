//! RTP time to 64-bit media time and to program (wall-clock) time.
//!
//! RFC 3550 §5.1: RTP timestamps are 32-bit and wrap; we extend them to 64 bits by taking each
//! new timestamp as the nearest one to the last (|delta| < 2^31). §6.4.1: a Sender Report pairs
//! an NTP wall-clock time with an RTP timestamp of the same instant; from the first report on,
//! a frame's capture time is that NTP time plus the RTP distance. Until then, the arrival time
//! of the frame stands in (ARCHITECTURE.md, "Frame").

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Converts a 64-bit NTP timestamp (32.32 fixed point) to milliseconds since the Unix epoch.
pub fn ntp_to_unix_ms(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64 - NTP_UNIX_OFFSET_SECS as i64;
    let frac_ms = ((ntp & 0xffff_ffff) * 1000) >> 32;
    secs * 1000 + frac_ms as i64
}

/// Extends one stream's RTP timestamps to 64 bits and maps them to program time.
#[derive(Debug, Clone)]
pub struct RtpTimeline {
    clock_rate: u32,
    /// Last extended timestamp seen (on the RTP or on the SR path).
    last: Option<u64>,
    /// (extended RTP time, Unix ms) from the newest Sender Report.
    sender_report: Option<(u64, i64)>,
}

/// Extended timestamps start here, so that a stream may step a little backwards at its start
/// (reordering, an SR that names an earlier instant) without going below zero.
const EXTENDED_ORIGIN: u64 = 1 << 32;

impl RtpTimeline {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate: clock_rate.max(1), last: None, sender_report: None }
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Whether a Sender Report has anchored this stream to the sender's wall clock.
    pub fn has_sender_report(&self) -> bool {
        self.sender_report.is_some()
    }

    /// Extends a 32-bit RTP timestamp to 64 bits, relative to the last one seen.
    pub fn extend(&mut self, rtp: u32) -> u64 {
        let extended = match self.last {
            None => EXTENDED_ORIGIN + u64::from(rtp),
            Some(last) => {
                let delta = rtp.wrapping_sub(last as u32) as i32;
                last.saturating_add_signed(i64::from(delta))
            }
        };
        if self.last.is_none_or(|last| extended > last) {
            self.last = Some(extended);
        }
        extended
    }

    /// Records a Sender Report: `ntp` is its NTP timestamp, `rtp` its RTP timestamp.
    pub fn on_sender_report(&mut self, ntp: u64, rtp: u32) {
        let extended = self.extend(rtp);
        self.sender_report = Some((extended, ntp_to_unix_ms(ntp)));
    }

    /// Program time of an extended timestamp: from the newest Sender Report if there is one,
    /// else the caller's arrival time.
    pub fn capture_time_ms(&self, extended: u64, arrival_unix_ms: i64) -> i64 {
        match self.sender_report {
            Some((sr_rtp, sr_ms)) => {
                let ticks = extended as i128 - sr_rtp as i128;
                sr_ms + (ticks * 1000 / i128::from(self.clock_rate)) as i64
            }
            None => arrival_unix_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_extend_across_the_wrap() {
        let mut t = RtpTimeline::new(90_000);
        let a = t.extend(u32::MAX - 1499);
        let b = t.extend(1500);
        assert_eq!(b - a, 3000);
        // A late packet from before the wrap maps back before it.
        assert_eq!(t.extend(u32::MAX - 1499), a);
        // And going on past the next wrap keeps counting.
        let mut last = b;
        for step in 1..=3u64 {
            let rtp = (1500u64 + step * 0x7000_0000) as u32;
            let e = t.extend(rtp);
            assert_eq!(e - last, 0x7000_0000);
            last = e;
        }
    }

    #[test]
    fn ntp_converts_to_unix_milliseconds() {
        // 2024-01-01T00:00:00.500Z
        let unix_secs = 1_704_067_200u64;
        let ntp = ((unix_secs + NTP_UNIX_OFFSET_SECS) << 32) | (1u64 << 31);
        assert_eq!(ntp_to_unix_ms(ntp), 1_704_067_200_500);
    }

    #[test]
    fn capture_time_follows_the_sender_report() {
        let mut t = RtpTimeline::new(90_000);
        let first = t.extend(90_000);
        assert_eq!(t.capture_time_ms(first, 42), 42, "arrival time before any SR");
        let unix_secs = 1_704_067_200u64;
        t.on_sender_report((unix_secs + NTP_UNIX_OFFSET_SECS) << 32, 180_000);
        assert!(t.has_sender_report());
        // One second (90 000 ticks) before the SR's instant.
        assert_eq!(t.capture_time_ms(first, 42), 1_704_067_199_000);
        let later = t.extend(180_000 + 9_000);
        assert_eq!(t.capture_time_ms(later, 0), 1_704_067_200_100);
    }
}
