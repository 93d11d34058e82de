//! Fitting whole video frames into LL-HLS parts (RFC 8216bis §4.4.4.9: a Partial Segment
//! lasts at most the Part Target Duration, and every Partial Segment of a segment but the last
//! lasts at least 85 % of it; §4.4.3.7 EXT-X-PART-INF).
//!
//! WebRTC frame times jitter and frame rates wander (Chromium's encoder drops frames under
//! load, cameras deliver 17 or 24 fps), so whole frames seldom add up to the 85–100 % window:
//! three frames of 58 ms make 174 ms, four make 232 ms, and neither fits a 200 ms target.
//! Declaring a looser PART-TARGET only moves the problem to other frame rates. Instead the
//! output timeline of the video may run a little off its input timeline, by a *skew*:
//!
//! - A frame that fits the open part keeps its duration.
//! - A frame that would overfill a part that is already long enough starts the next part.
//! - A frame that would overfill a part that is still too short either *stretches* the part's
//!   last frame up to the window (the video runs later than its input) or is *shrunk* to end
//!   the part exactly at the target (the video runs earlier), whichever leaves the smaller skew.
//! - A frame longer than a whole part (a freeze), or a choice that would push the skew past
//!   [`MAX_SKEW_TICKS`], is cut to fit and the next frame goes back to its input time: the video
//!   track then has a hole where the picture froze anyway, and the audio is untouched.
//! - The last part of a segment has no lower bound, so the segment's last frame absorbs the
//!   skew ([`PartFit::absorb`]) and each segment starts on its input time again.
//!
//! The skew stays within ±40 ms, inside the lip-sync tolerance of broadcast practice (ITU-R
//! BT.1359: about 45 ms of video lead, 125 ms of lag, go unnoticed).

/// The largest skew, in 90 kHz ticks (40 ms).
pub const MAX_SKEW_TICKS: i64 = 3_600;

/// Where a frame goes, with its output duration in 90 kHz ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Append the frame to the open part.
    Append { duration: u32 },
    /// Close the open part first, after adding `stretch` ticks to its last frame; the frame
    /// then opens the next part.
    CutBefore { stretch: u32, duration: u32 },
}

/// The part-fitting state of one video track: its part target and its current skew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFit {
    target: u64,
    /// Least duration of a part that is not the last of its segment: 85 % of the target, plus
    /// 1 ms so that no rounding in a playlist checker puts it under.
    least: u64,
    skew: i64,
}

impl PartFit {
    /// `target`: PART-TARGET in 90 kHz ticks.
    pub fn new(target: u64) -> Self {
        let target = target.max(1);
        Self { target, least: (target * 85).div_ceil(100) + 90, skew: 0 }
    }

    /// Output time minus input time for the next frame, in ticks.
    pub fn skew(&self) -> i64 {
        self.skew
    }

    /// The output decode time of a frame whose input decode time is `input_dts`.
    pub fn output_dts(&self, input_dts: u64) -> u64 {
        input_dts.saturating_add_signed(self.skew)
    }

    /// Starts again on the input timeline (a new presenter, a new program).
    pub fn reset(&mut self) {
        self.skew = 0;
    }

    /// Places a frame lasting `input_duration` ticks (to the next frame's input time) after
    /// an open part of `part_ticks` (0: no part is open).
    pub fn place(&mut self, part_ticks: u64, input_duration: u64) -> Placement {
        let input = input_duration.max(1);
        if part_ticks > 0 && part_ticks + input > self.target && part_ticks < self.least {
            let stretch = self.least - part_ticks;
            let stretched = self.skew + stretch as i64;
            let shrunk_to = self.target - part_ticks;
            let shrunk = self.skew + shrunk_to as i64 - input as i64;
            if stretched.abs() <= shrunk.abs() && stretched.abs() <= MAX_SKEW_TICKS {
                self.skew = stretched;
                return self.open_part_with(stretch as u32, input);
            }
            if shrunk.abs() <= MAX_SKEW_TICKS {
                self.skew = shrunk;
                return Placement::Append { duration: shrunk_to as u32 };
            }
            // Neither fits the skew budget: cut the frame to fill the part and leave a hole
            // (`shrunk` is then below -MAX_SKEW_TICKS: the next frame goes back to its input time).
            self.skew = 0;
            return Placement::Append { duration: shrunk_to as u32 };
        }
        if part_ticks > 0 && part_ticks + input > self.target {
            return self.open_part_with(0, input);
        }
        Placement::Append { duration: self.fit_alone(input) as u32 }
    }

    /// Whether a part of `part_ticks` should close now rather than take a frame that will
    /// probably last `next_estimate`: only when the part is already long enough.
    pub fn should_cut(&self, part_ticks: u64, next_estimate: u64) -> bool {
        part_ticks >= self.target || (part_ticks >= self.least && part_ticks + next_estimate > self.target)
    }

    /// At a segment's end: the new duration of the segment's last frame (of `last_duration`
    /// ticks, closing a part of `part_ticks`) that takes the skew back towards zero.
    pub fn absorb(&mut self, part_ticks: u64, last_duration: u32) -> u32 {
        let last = i64::from(last_duration);
        let room_to_grow = self.target.saturating_sub(part_ticks) as i64;
        let change = (-self.skew).clamp(1 - last, room_to_grow);
        self.skew += change;
        (last + change) as u32
    }

    fn open_part_with(&mut self, stretch: u32, input: u64) -> Placement {
        Placement::CutBefore { stretch, duration: self.fit_alone(input) as u32 }
    }

    /// A frame alone in a part: a frame longer than the target is cut to it, and the next
    /// frame goes back to its input time (or as near as it can without overlapping this one).
    fn fit_alone(&mut self, input: u64) -> u64 {
        if input > self.target {
            self.skew = (self.skew + self.target as i64 - input as i64).max(0);
            return self.target;
        }
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: u64 = 18_000; // 200 ms

    /// Runs frames of the given input durations through a fitter the way the segmenter does,
    /// and returns the closed parts' durations (all but the open last one).
    fn parts_of(durations: &[u64]) -> (Vec<u64>, i64) {
        let mut fit = PartFit::new(TARGET);
        let mut parts = Vec::new();
        let mut open: Vec<u64> = Vec::new();
        let mut worst_skew = 0i64;
        for (i, &d) in durations.iter().enumerate() {
            match fit.place(open.iter().sum(), d) {
                Placement::Append { duration } => open.push(u64::from(duration)),
                Placement::CutBefore { stretch, duration } => {
                    *open.last_mut().unwrap() += u64::from(stretch);
                    parts.push(open.iter().sum());
                    open = vec![u64::from(duration)];
                }
            }
            worst_skew = worst_skew.max(fit.skew().abs());
            let next = durations.get(i + 1).copied().unwrap_or(d);
            if fit.should_cut(open.iter().sum(), next) {
                parts.push(open.iter().sum());
                open.clear();
            }
        }
        (parts, worst_skew)
    }

    fn assert_window(parts: &[u64]) {
        for &p in parts {
            assert!(p <= TARGET && p * 100 >= TARGET * 85, "part of {p} ticks outside 85-100 %: {parts:?}");
        }
    }

    /// Deterministic jitter: ±`amplitude` ticks around `nominal`.
    fn jittery(nominal: u64, amplitude: u64, count: usize) -> Vec<u64> {
        let mut state = 0x2545_f491_u64;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                nominal - amplitude + state % (2 * amplitude + 1)
            })
            .collect()
    }

    #[test]
    fn steady_frame_rates_fill_parts_without_skew() {
        for fps in [30, 25, 20, 15, 10, 60] {
            let (parts, skew) = parts_of(&vec![90_000 / fps; 300]);
            assert_window(&parts);
            assert!(parts.len() > 10, "{fps} fps: {parts:?}");
            if 18_000 % (90_000 / fps) == 0 {
                assert_eq!(skew, 0, "{fps} fps divides 200 ms");
            }
        }
    }

    #[test]
    fn frame_rates_that_do_not_divide_the_target_stay_in_the_window_with_a_bounded_skew() {
        for fps in [17, 24, 12, 18, 29, 9] {
            let (parts, skew) = parts_of(&vec![90_000 / fps; 600]);
            assert_window(&parts);
            assert!(skew <= MAX_SKEW_TICKS, "{fps} fps: skew {skew}");
        }
    }

    #[test]
    fn jittery_chromium_like_timing_stays_in_the_window() {
        // 20 fps ± 12 ms and 30 fps ± 8 ms, as Chromium's capture clock delivers under load.
        for (nominal, amplitude) in [(4_500, 1_080), (3_000, 720)] {
            let (parts, skew) = parts_of(&jittery(nominal, amplitude, 2_000));
            assert_window(&parts);
            assert!(skew <= MAX_SKEW_TICKS);
        }
    }

    #[test]
    fn a_freeze_longer_than_a_part_leaves_a_hole_and_no_skew() {
        let mut durations = vec![3_000; 20];
        durations.push(45_000); // half a second frozen
        durations.extend([3_000; 20]);
        let (parts, _) = parts_of(&durations);
        assert_window(&parts);
        let mut fit = PartFit::new(TARGET);
        assert_eq!(fit.place(0, 45_000), Placement::Append { duration: TARGET as u32 });
        assert_eq!(fit.skew(), 0);
    }

    #[test]
    fn the_last_frame_of_a_segment_takes_the_skew_back() {
        let mut fit = PartFit::new(TARGET);
        fit.skew = 2_000;
        assert_eq!(fit.absorb(12_000, 3_000), 1_000);
        assert_eq!(fit.skew(), 0);
        fit.skew = -2_000;
        // Only 1 000 ticks of room before the part would pass the target.
        assert_eq!(fit.absorb(17_000, 3_000), 4_000);
        assert_eq!(fit.skew(), -1_000);
        fit.skew = 5_000;
        assert_eq!(fit.absorb(12_000, 3_000), 1, "a frame keeps at least one tick");
        assert_eq!(fit.skew(), 2_001);
    }
}
