//! Program time: where on the media clock an interaction happens.
//!
//! Program time is milliseconds since the Unix epoch on the media's own clock, what
//! `EXT-X-PROGRAM-DATE-TIME` (RFC 8216bis §4.4.4.6) says for a sample of the program. A client
//! shows an event when its player's `playingDate` reaches the event's `at`.
//!
//! [`stamp`] is the one function that decides an event's `at`. The decision:
//! - **A program runs** (the caller knows the live edge: the program time of the newest program
//!   frame and the wall-clock instant the server saw it): `at` = edge program time + the wall time
//!   elapsed since the edge was observed, capped at [`EDGE_EXTRAPOLATION_CAP_MS`]. Between two
//!   frames the media clock goes on at the speed of the wall clock, so an action taken 30 ms after
//!   a frame lands 30 ms after it, not on it. The cap keeps a stalled program (publisher gone quiet)
//!   from stamping events past anything viewers will ever play: during a stall `at` stays within
//!   the cap of the last frame they saw. A wall clock behind the observation counts as zero.
//! - **No program runs** (before the show, between programs): `at` = `now`, the wall clock;
//!   clients without a player show such events at once because their `playingDate` is absent.
//!
//! Host/presenter actions and attendee messages are stamped the same way, when the server accepts
//! them. The room then keeps `at` non-decreasing along the log (see `room`), so a client that
//! releases events in order never waits on one behind a later one.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch on the program's media clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProgramTime(pub u64);

impl ProgramTime {
    /// The value in milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

/// The live edge of a room's program, as the packager last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveEdge {
    /// Program time of the newest program frame (its capture time on the media clock).
    pub program_time: ProgramTime,
    /// Wall-clock milliseconds since the Unix epoch when the server saw that frame.
    pub observed_wall_ms: u64,
}

/// The most wall time that [`stamp`] adds to the live edge. One second: well above the gap
/// between frames (≤ 100 ms for video, 20 ms for Opus), well below the LL-HLS latency.
pub const EDGE_EXTRAPOLATION_CAP_MS: u64 = 1_000;

/// The program time `at` of an event accepted at wall-clock `now_wall_ms` (see the module doc).
pub fn stamp(edge: Option<LiveEdge>, now_wall_ms: u64) -> ProgramTime {
    match edge {
        None => ProgramTime(now_wall_ms),
        Some(edge) => {
            let elapsed = now_wall_ms.saturating_sub(edge.observed_wall_ms).min(EDGE_EXTRAPOLATION_CAP_MS);
            ProgramTime(edge.program_time.0.saturating_add(elapsed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(program: u64, observed: u64) -> Option<LiveEdge> {
        Some(LiveEdge { program_time: ProgramTime(program), observed_wall_ms: observed })
    }

    #[test]
    fn no_program_stamps_wall_clock() {
        assert_eq!(stamp(None, 1_700_000_000_123), ProgramTime(1_700_000_000_123));
    }

    #[test]
    fn at_the_edge_stamps_the_edge() {
        // Program time runs 2.5 s behind the wall clock here (capture → server latency is
        // irrelevant: only the elapsed time since the observation counts).
        assert_eq!(stamp(edge(1_000_000, 1_002_500), 1_002_500), ProgramTime(1_000_000));
    }

    #[test]
    fn between_frames_the_media_clock_runs_on() {
        assert_eq!(stamp(edge(1_000_000, 1_002_500), 1_002_530), ProgramTime(1_000_030));
    }

    #[test]
    fn a_stalled_program_caps_the_extrapolation() {
        assert_eq!(stamp(edge(1_000_000, 1_002_500), 1_060_000), ProgramTime(1_000_000 + EDGE_EXTRAPOLATION_CAP_MS));
    }

    #[test]
    fn a_wall_clock_behind_the_observation_adds_nothing() {
        assert_eq!(stamp(edge(1_000_000, 1_002_500), 1_002_000), ProgramTime(1_000_000));
    }

    #[test]
    fn serializes_as_a_plain_number() {
        assert_eq!(serde_json::to_string(&ProgramTime(42)).ok().as_deref(), Some("42"));
    }
}
