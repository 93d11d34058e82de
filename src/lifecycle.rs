//! A webinar's lifecycle: scheduled → green room → live → ended, as a pure state machine.
//!
//! - **scheduled**: the room exists; nothing is broadcast. Presenters may already publish (they
//!   are then in the green room in all but name); attendees wait in the waiting room.
//! - **green_room**: presenters are on the stage and see and hear each other over WHEP;
//!   nothing is broadcast (no program, no LL-HLS); attendees wait.
//! - **live**: the program runs (LL-HLS from the presenter on air); attendees are let in
//!   (unless the room admits them by hand, `waiting_room`).
//! - **ended**: publishers are disconnected, the live playlist ends and the replay is VOD;
//!   nobody publishes again. Final.
//!
//! Decided here: phases only move forward (scheduled may skip the green room; any phase may
//! end); asking for the phase a room is already in is not an error (a retried "go live" is
//! harmless); going back (live → green room) is refused, since the program's timeline and
//! replay cannot un-broadcast what went out.

use serde::{Deserialize, Serialize};

/// Where a room is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scheduled,
    GreenRoom,
    Live,
    Ended,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::GreenRoom => "green_room",
            Self::Live => "live",
            Self::Ended => "ended",
        }
    }

    /// Whether the program is broadcast (or was, and is now the replay).
    pub fn broadcasts(self) -> bool {
        matches!(self, Self::Live | Self::Ended)
    }

    /// Whether presenters may publish on the stage.
    pub fn takes_publishers(self) -> bool {
        self != Self::Ended
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused change of phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the room is {from}; it cannot go to {to}: phases only move forward (scheduled → green_room → live → ended)")]
pub struct PhaseError {
    pub from: Phase,
    pub to: Phase,
}

/// What a change of phase asks the shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Already there: nothing to do.
    Unchanged,
    /// The room opens its green room.
    OpenGreenRoom,
    /// The program starts; waiting attendees are let in.
    GoLive,
    /// Publishers are closed, the program and its replay end.
    End,
}

/// Checks a change of phase from `from` to `to`.
pub fn transition(from: Phase, to: Phase) -> Result<Transition, PhaseError> {
    match (from, to) {
        (a, b) if a == b => Ok(Transition::Unchanged),
        (_, Phase::Ended) => Ok(Transition::End),
        (Phase::Scheduled, Phase::GreenRoom) => Ok(Transition::OpenGreenRoom),
        (Phase::Scheduled | Phase::GreenRoom, Phase::Live) => Ok(Transition::GoLive),
        (from, to) => Err(PhaseError { from, to }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        use Phase::*;
        assert_eq!(transition(Scheduled, GreenRoom), Ok(Transition::OpenGreenRoom));
        assert_eq!(transition(Scheduled, Live), Ok(Transition::GoLive));
        assert_eq!(transition(GreenRoom, Live), Ok(Transition::GoLive));
        assert_eq!(transition(Live, Live), Ok(Transition::Unchanged));
        for from in [Scheduled, GreenRoom, Live] {
            assert_eq!(transition(from, Ended), Ok(Transition::End));
        }
        assert_eq!(transition(Ended, Ended), Ok(Transition::Unchanged));
        assert_eq!(transition(Live, GreenRoom), Err(PhaseError { from: Live, to: GreenRoom }));
        assert_eq!(transition(GreenRoom, Scheduled), Err(PhaseError { from: GreenRoom, to: Scheduled }));
        assert!(transition(Ended, Live).is_err());
        assert!(Live.broadcasts() && Ended.broadcasts() && !GreenRoom.broadcasts());
        assert!(!Ended.takes_publishers() && Scheduled.takes_publishers());
    }

    #[test]
    fn phases_read_and_write_as_snake_case() {
        assert_eq!(serde_json::to_string(&Phase::GreenRoom).unwrap(), "\"green_room\"");
        assert_eq!(serde_json::from_str::<Phase>("\"live\"").unwrap(), Phase::Live);
        assert!(serde_json::from_str::<Phase>("\"Live\"").is_err());
    }
}
