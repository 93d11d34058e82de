//! The program's timeline: maps each presenter's frames (64-bit RTP time, capture time) onto
//! one continuous decode timeline per track, aligned with each other by capture time.
//!
//! Decided here:
//! - An *epoch* is a stretch of one presenter's session. It starts at a video keyframe; video
//!   decode time then follows the RTP timestamps from there.
//! - Audio is placed by capture time relative to that keyframe, so A/V stay in sync to the
//!   accuracy of the senders' RTCP Sender Reports; then it follows its own sample count.
//! - A new epoch (program switch, reconnection, a jump in RTP time) continues both tracks
//!   right after where the previous epoch ended: decode times never go back.

/// Video timescale.
pub const VIDEO_HZ: u64 = 90_000;
/// Audio timescale (AAC at 48 kHz).
pub const AUDIO_HZ: u64 = 48_000;

#[derive(Debug, Clone, Default)]
pub struct ProgramTimeline {
    /// (first video pts of the epoch, its decode time, its capture time).
    video_anchor: Option<(u64, u64, i64)>,
    /// Decode time offset of the epoch's audio (48 kHz) relative to the AAC sample count.
    audio_offset: Option<i64>,
    /// End of the last video/audio sample placed (next epoch starts here).
    video_end: u64,
    audio_end: u64,
    last_video_dts: Option<u64>,
}

impl ProgramTimeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new epoch: the next video keyframe anchors both tracks.
    pub fn new_epoch(&mut self) {
        self.video_anchor = None;
        self.audio_offset = None;
    }

    pub fn is_anchored(&self) -> bool {
        self.video_anchor.is_some()
    }

    /// Capture time (ms) of the keyframe that anchors the epoch.
    pub fn anchor_capture_ms(&self) -> Option<i64> {
        self.video_anchor.map(|(_, _, capture_ms)| capture_ms)
    }

    /// Decode time (90 kHz) of a video frame. The first call of an epoch must be a keyframe;
    /// `None` means drop the frame (before the anchor, or stepping back).
    pub fn video_dts(&mut self, pts: u64, capture_ms: i64, keyframe: bool) -> Option<u64> {
        let (pts0, base, _) = match self.video_anchor {
            Some(anchor) => anchor,
            None if keyframe => {
                // One nominal frame after the previous epoch's last frame.
                let base = self.last_video_dts.map(|d| d.max(self.video_end) + 3000).unwrap_or(0);
                self.video_anchor = Some((pts, base, capture_ms));
                (pts, base, capture_ms)
            }
            None => return None,
        };
        let dts = base + pts.checked_sub(pts0)?;
        if self.last_video_dts.is_some_and(|last| dts <= last) {
            return None;
        }
        self.last_video_dts = Some(dts);
        self.video_end = dts;
        Some(dts)
    }

    /// Decode time (48 kHz) of an AAC frame at `aac_pts` on the transcoder's timeline, whose
    /// first sample was captured at `capture_ms`. `None`: drop it (no video anchor yet, or it
    /// would start before the epoch or overlap the previous one).
    pub fn audio_dts(&mut self, aac_pts: u64, capture_ms: i64, samples: u32) -> Option<u64> {
        let (_, video_base, anchor_ms) = self.video_anchor?;
        let offset = *self.audio_offset.get_or_insert_with(|| {
            let epoch_start = (video_base * AUDIO_HZ / VIDEO_HZ) as i64;
            epoch_start + (capture_ms - anchor_ms) * (AUDIO_HZ as i64) / 1000 - aac_pts as i64
        });
        let dts = aac_pts as i64 + offset;
        if dts < 0 || (dts as u64) < self.audio_end {
            return None;
        }
        self.audio_end = dts as u64 + u64::from(samples);
        Some(dts as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_is_placed_by_capture_time_relative_to_the_keyframe() {
        let mut t = ProgramTimeline::new();
        assert_eq!(t.audio_dts(0, 1000, 1024), None, "no anchor yet");
        assert_eq!(t.video_dts(500_000, 1000, false), None, "epochs start at keyframes");
        assert_eq!(t.video_dts(500_000, 1000, true), Some(0));
        assert_eq!(t.video_dts(503_000, 1033, false), Some(3000));
        // Audio captured 50 ms after the keyframe: 2400 samples into the epoch.
        assert_eq!(t.audio_dts(0, 1050, 1024), Some(2400));
        assert_eq!(t.audio_dts(1024, 1071, 1024), Some(3424));
        // Overlap is dropped.
        assert_eq!(t.audio_dts(1024, 1071, 1024), None);
    }

    #[test]
    fn audio_before_the_keyframe_is_dropped_and_epochs_continue() {
        let mut t = ProgramTimeline::new();
        t.video_dts(0, 10_000, true);
        assert_eq!(t.audio_dts(0, 9_990, 1024), None, "10 ms before the epoch");
        assert_eq!(t.audio_dts(1024, 10_011, 1024), Some(544));
        for n in 1..60 {
            t.video_dts(n * 3000, 10_000 + n as i64 * 33, false);
        }
        t.new_epoch();
        assert_eq!(t.video_dts(9_999_999, 50_000, false), None);
        // The new presenter's keyframe follows the old epoch's last frame.
        assert_eq!(t.video_dts(9_999_999, 50_000, true), Some(59 * 3000 + 3000));
        let dts = t.audio_dts(77, 50_000, 1024).unwrap();
        assert_eq!(dts, 60 * 3000 * 48_000 / 90_000);
    }
}
