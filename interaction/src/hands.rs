//! Hands: raise, lower, the queue in order of raising, and invitations to the stage.
//!
//! Rules: anyone raises or lowers their own hand. Raising a raised hand and lowering a lowered
//! one are no-ops (no events, no error): a double click or a resend must not lose one's place in
//! the queue. Moderators clear one hand or all of them. The host invites a participant to the
//! stage: the `hand_invited` event records it (the stage invitation itself belongs to the webinar
//! issue) and takes their hand out of the queue, since the request is answered.

use serde::Serialize;

use crate::actor::{Actor, Role};
use crate::clock::ProgramTime;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};

/// A raised hand, in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hand {
    pub participant_id: String,
    pub name: String,
    /// Program time and wall-clock ms when it was raised.
    pub at: ProgramTime,
    pub ts: u64,
}

/// An invitation to the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub participant_id: String,
    pub by: Actor,
    pub at: ProgramTime,
    pub ts: u64,
}

/// A room's raised hands, first raised first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hands {
    queue: Vec<Hand>,
    invitations: Vec<Invitation>,
}

impl Hands {
    pub(crate) fn raise(&self, actor: &Actor) -> Vec<EventKind> {
        if self.is_raised(&actor.participant_id) { Vec::new() } else { vec![EventKind::HandRaised] }
    }

    pub(crate) fn lower(&self, actor: &Actor) -> Vec<EventKind> {
        self.lowered(&actor.participant_id)
    }

    pub(crate) fn clear(&self, actor: &Actor, participant: Option<&str>) -> Result<Vec<EventKind>> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "hand_clear" });
        }
        Ok(match participant {
            Some(p) => self.lowered(p),
            None if self.queue.is_empty() => Vec::new(),
            None => vec![EventKind::HandsCleared],
        })
    }

    pub(crate) fn invite(&self, actor: &Actor, participant: &str) -> Result<EventKind> {
        if actor.role != Role::Host {
            return Err(InteractionError::NotAllowed { action: "hand_invite" });
        }
        if participant.is_empty() {
            return Err(InteractionError::Empty { field: "participant" });
        }
        Ok(EventKind::HandInvited { participant: participant.to_owned() })
    }

    fn lowered(&self, participant: &str) -> Vec<EventKind> {
        if self.is_raised(participant) {
            vec![EventKind::HandLowered { participant: participant.to_owned() }]
        } else {
            Vec::new()
        }
    }

    pub(crate) fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::HandRaised if !self.is_raised(&event.actor.participant_id) => self.queue.push(Hand {
                participant_id: event.actor.participant_id.clone(),
                name: event.actor.name.clone(),
                at: event.at,
                ts: event.ts,
            }),
            EventKind::HandLowered { participant } => self.queue.retain(|h| h.participant_id != *participant),
            EventKind::HandsCleared => self.queue.clear(),
            EventKind::HandInvited { participant } => {
                self.queue.retain(|h| h.participant_id != *participant);
                self.invitations.push(Invitation {
                    participant_id: participant.clone(),
                    by: event.actor.clone(),
                    at: event.at,
                    ts: event.ts,
                });
            }
            _ => {}
        }
    }

    pub fn is_raised(&self, participant: &str) -> bool {
        self.queue.iter().any(|h| h.participant_id == participant)
    }

    /// The raised hands, first raised first.
    pub fn queue(&self) -> &[Hand] {
        &self.queue
    }

    /// Every invitation to the stage, oldest first.
    pub fn invitations(&self) -> &[Invitation] {
        &self.invitations
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Command, InteractionError};

    fn queue(room: &crate::RoomInteraction) -> Vec<String> {
        room.hands().iter().map(|h| h.participant_id.clone()).collect()
    }

    #[test]
    fn the_queue_keeps_the_order_of_raising_and_raise_is_idempotent() {
        let mut room = room();
        for who in ["a", "b", "c"] {
            assert_eq!(room.exec(&attendee(who), Command::HandRaise, T0, AT0).expect("raised").len(), 1);
        }
        assert!(room.exec(&attendee("a"), Command::HandRaise, T0, AT0).expect("no-op").is_empty());
        assert_eq!(queue(&room), ["a", "b", "c"]);
        room.exec(&attendee("b"), Command::HandLower, T0, AT0).expect("lowered");
        assert!(room.exec(&attendee("b"), Command::HandLower, T0, AT0).expect("no-op").is_empty());
        room.exec(&attendee("b"), Command::HandRaise, T0, AT0).expect("raised again");
        assert_eq!(queue(&room), ["a", "c", "b"]);
    }

    #[test]
    fn moderators_clear_one_or_all_attendees_may_not() {
        let mut room = room();
        for who in ["a", "b", "c"] {
            room.exec(&attendee(who), Command::HandRaise, T0, AT0).expect("raised");
        }
        let e = room.exec(&attendee("a"), Command::HandClear { participant: Some("b".into()) }, T0, AT0);
        assert_eq!(e, Err(InteractionError::NotAllowed { action: "hand_clear" }));
        let e = room.exec(&attendee("a"), Command::HandClear { participant: None }, T0, AT0);
        assert_eq!(e, Err(InteractionError::NotAllowed { action: "hand_clear" }));
        let events = room.exec(&presenter(), Command::HandClear { participant: Some("b".into()) }, T0, AT0);
        let events = events.expect("cleared");
        assert!(events[0].concerns("b"), "b learns their hand was lowered");
        assert_eq!(queue(&room), ["a", "c"]);
        room.exec(&host(), Command::HandClear { participant: None }, T0, AT0).expect("cleared all");
        assert!(room.hands().is_empty());
        assert!(room.exec(&host(), Command::HandClear { participant: None }, T0, AT0).expect("no-op").is_empty());
    }

    #[test]
    fn the_host_invites_and_the_hand_leaves_the_queue() {
        let mut room = room();
        room.exec(&attendee("a"), Command::HandRaise, T0, AT0).expect("raised");
        let invite = Command::HandInvite { participant: "a".into() };
        let e = room.exec(&presenter(), invite.clone(), T0, AT0);
        assert_eq!(e, Err(InteractionError::NotAllowed { action: "hand_invite" }));
        let events = room.exec(&host(), invite, T0, AT0).expect("invited");
        assert!(events[0].visible_to_participant(crate::Role::Attendee, "a"));
        assert!(!events[0].visible_to_participant(crate::Role::Attendee, "b"));
        assert!(room.hands().is_empty());
        assert_eq!(room.invitations().len(), 1);
    }

    #[test]
    fn attendees_see_only_their_own_hand_in_a_snapshot() {
        let mut room = room();
        room.exec(&attendee("a"), Command::HandRaise, T0, AT0).expect("raised");
        room.exec(&attendee("b"), Command::HandRaise, T0, AT0).expect("raised");
        assert_eq!(room.snapshot(&attendee("b")).hands.len(), 1);
        assert_eq!(room.snapshot(&attendee("c")).hands.len(), 0);
        assert_eq!(room.snapshot(&host()).hands.len(), 2);
    }
}
