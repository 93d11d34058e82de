//! The waiting room: which attendees are held before they see the room, and why; pure state.
//!
//! An attendee is held when (first match):
//! 1. the host already let them in ([`hold_reason`]'s `admitted`): never held again;
//! 2. their registration waits for the host's approval → `approval`;
//! 3. the room is not live yet (scheduled, green room) → `not_live`;
//! 4. the room is live and admits by hand (`waiting_room` on) → `admission`.
//!
//! Hosts and presenters are never held; an ended room holds nobody (its replay is public).
//! Going live lets every `not_live` attendee in at once unless the room admits by hand; the
//! host can also let in one, some or all of them at any time, before live included. Who was
//! let in is part of the room's stored state (it survives a restart); who is waiting is not
//! (waiting connections reconnect and wait again).
//!
//! Someone in the waiting room has not joined yet: presence (the studio's "connected"),
//! `participant.joined` and the report's attendance count from when they are let in.
//!
//! The waiting room holds the room's interactive side (the WebSocket: chat, Q&A, polls, the
//! page's player); the LL-HLS URLs themselves are public like any CDN-delivered stream.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::lifecycle::Phase;

/// Why an attendee waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// The room is not live yet.
    NotLive,
    /// The host admits attendees by hand.
    Admission,
    /// The attendee's registration awaits approval.
    Approval,
}

/// Whether (and why) an attendee waits.
pub fn hold_reason(phase: Phase, admits_by_hand: bool, pending_approval: bool, admitted: bool) -> Option<HoldReason> {
    if admitted || phase == Phase::Ended {
        None
    } else if pending_approval {
        Some(HoldReason::Approval)
    } else if !phase.broadcasts() {
        Some(HoldReason::NotLive)
    } else if admits_by_hand {
        Some(HoldReason::Admission)
    } else {
        None
    }
}

/// Someone in the waiting room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiter {
    pub participant: String,
    pub name: String,
    /// When they started waiting (Unix ms).
    pub since_ms: u64,
    pub reason: HoldReason,
    /// Their open connections (a participant with two tabs waits once).
    #[serde(skip)]
    connections: usize,
}

/// Who waits in one room.
#[derive(Debug, Default)]
pub struct WaitingRoom {
    waiting: BTreeMap<String, Waiter>,
}

/// A request to let in participants who are not waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not in the waiting room: {}", .0.join(", "))]
pub struct NotWaiting(pub Vec<String>);

impl WaitingRoom {
    /// A connection of `participant` waits (or still waits, maybe for another reason now);
    /// `true` if the list moderators see changed.
    pub fn wait(
        &mut self,
        participant: &str,
        name: &str,
        reason: HoldReason,
        now_ms: u64,
        new_connection: bool,
    ) -> bool {
        match self.waiting.get_mut(participant) {
            Some(waiter) => {
                waiter.connections += usize::from(new_connection);
                let changed = waiter.reason != reason;
                waiter.reason = reason;
                changed
            }
            None => {
                let waiter = Waiter {
                    participant: participant.to_owned(),
                    name: name.to_owned(),
                    since_ms: now_ms,
                    reason,
                    connections: 1,
                };
                self.waiting.insert(participant.to_owned(), waiter);
                true
            }
        }
    }

    /// A waiting connection of `participant` closed or was let in; `true` if the list changed.
    pub fn stop_waiting(&mut self, participant: &str) -> bool {
        match self.waiting.get_mut(participant) {
            Some(waiter) if waiter.connections > 1 => {
                waiter.connections -= 1;
                false
            }
            Some(_) => {
                self.waiting.remove(participant);
                true
            }
            None => false,
        }
    }

    /// Checks that every one of `participants` is waiting; returns them, deduplicated.
    pub fn admissible(&self, participants: &[String]) -> Result<BTreeSet<String>, NotWaiting> {
        let missing: Vec<String> = participants.iter().filter(|p| !self.waiting.contains_key(*p)).cloned().collect();
        if missing.is_empty() { Ok(participants.iter().cloned().collect()) } else { Err(NotWaiting(missing)) }
    }

    /// Everyone waiting now.
    pub fn everyone(&self) -> BTreeSet<String> {
        self.waiting.keys().cloned().collect()
    }

    /// The list, longest waiting first.
    pub fn list(&self) -> Vec<Waiter> {
        let mut list: Vec<Waiter> = self.waiting.values().cloned().collect();
        list.sort_by(|a, b| a.since_ms.cmp(&b.since_ms).then_with(|| a.participant.cmp(&b.participant)));
        list
    }

    /// How many wait.
    pub fn count(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn who_is_held_and_why() {
        assert_eq!(hold_reason(Scheduled, false, false, false), Some(HoldReason::NotLive));
        assert_eq!(hold_reason(GreenRoom, true, false, false), Some(HoldReason::NotLive));
        assert_eq!(hold_reason(Live, false, false, false), None);
        assert_eq!(hold_reason(Live, true, false, false), Some(HoldReason::Admission));
        assert_eq!(hold_reason(Live, false, true, false), Some(HoldReason::Approval));
        assert_eq!(hold_reason(Scheduled, false, true, false), Some(HoldReason::Approval));
        assert_eq!(hold_reason(Scheduled, true, true, true), None, "let in by the host");
        assert_eq!(hold_reason(Ended, true, true, false), None, "the replay is public");
    }

    #[test]
    fn a_participant_waits_once_across_connections() {
        let mut room = WaitingRoom::default();
        assert!(room.wait("a-1", "Ada", HoldReason::NotLive, 10, true));
        assert!(!room.wait("a-1", "Ada", HoldReason::NotLive, 20, true), "second tab");
        assert!(room.wait("a-2", "Bo", HoldReason::Approval, 15, true));
        assert_eq!(room.list().iter().map(|w| w.participant.as_str()).collect::<Vec<_>>(), ["a-1", "a-2"]);
        assert!(room.wait("a-1", "Ada", HoldReason::Admission, 30, false), "reason changed");
        assert_eq!(room.list()[0].reason, HoldReason::Admission);
        assert_eq!(room.list()[0].since_ms, 10);
        assert!(!room.stop_waiting("a-1"));
        assert!(room.stop_waiting("a-1"));
        assert!(!room.stop_waiting("a-1"));
        assert_eq!(room.count(), 1);
    }

    #[test]
    fn only_waiting_participants_can_be_let_in() {
        let mut room = WaitingRoom::default();
        room.wait("a-1", "Ada", HoldReason::NotLive, 10, true);
        room.wait("a-2", "Bo", HoldReason::NotLive, 11, true);
        assert_eq!(room.admissible(&["a-2".into(), "a-2".into()]).unwrap().len(), 1);
        assert_eq!(room.admissible(&["a-1".into(), "x".into()]), Err(NotWaiting(vec!["x".into()])));
        assert_eq!(room.everyone().len(), 2);
    }
}
