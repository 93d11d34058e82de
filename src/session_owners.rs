//! Who opened each WHIP session with a signed token: its room, participant and `jti`. A
//! revocation ([`crate::interaction::Removal`]: one token, or every token of a participant, a
//! ban) then ends the sessions that token opened as well as its WebSockets, so an attendee
//! removed while on the stage stops publishing at once, whatever their client does. Sessions
//! opened with the admin token or a room key have no owner here: those keys are not revocable.
//! WHEP sessions are left alone: watching needs no token once the room is live, so ending a
//! banned viewer's session would keep nobody out.
//!
//! Pure bookkeeping: whether a session still runs is asked of the caller (`running`), and what
//! to close is returned, not closed.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::interaction::Removal;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    room: String,
    participant: String,
    token_id: String,
}

#[derive(Debug, Default)]
pub struct SessionOwners {
    /// Session id → who opened it.
    owners: Mutex<HashMap<String, Owner>>,
}

impl SessionOwners {
    /// Notes that `participant` opened `session` in `room` with the signed token `token_id`;
    /// forgets the sessions that no longer run (`running(id)` false), so the map holds about
    /// as many entries as there are sessions.
    pub fn record(&self, session: &str, room: &str, participant: &str, token_id: &str, running: impl Fn(&str) -> bool) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.retain(|id, _| running(id));
        let owner = Owner { room: room.to_owned(), participant: participant.to_owned(), token_id: token_id.to_owned() };
        owners.insert(session.to_owned(), owner);
    }

    /// The sessions of `room` that `removal` takes away, forgotten here: the caller closes them.
    pub fn revoked(&self, room: &str, removal: &Removal) -> Vec<String> {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut revoked: Vec<String> = owners
            .iter()
            .filter(|(_, o)| o.room == room && removal.applies_to(&o.participant, Some(&o.token_id)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &revoked {
            owners.remove(id);
        }
        revoked.sort();
        revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners() -> SessionOwners {
        let owners = SessionOwners::default();
        owners.record("s1", "room", "ada", "t1", |_| true);
        owners.record("s2", "room", "ada", "t2", |_| true);
        owners.record("s3", "room", "bob", "t3", |_| true);
        owners.record("s4", "other", "ada", "t4", |_| true);
        owners
    }

    #[test]
    fn a_ban_takes_every_session_of_the_participant_in_that_room_only() {
        let owners = owners();
        assert_eq!(owners.revoked("room", &Removal::Participant("ada".into())), ["s1", "s2"]);
        assert_eq!(owners.revoked("room", &Removal::Participant("ada".into())), Vec::<String>::new());
        assert_eq!(owners.revoked("other", &Removal::Participant("ada".into())), ["s4"]);
    }

    #[test]
    fn a_revoked_token_takes_the_sessions_it_opened() {
        let owners = owners();
        assert_eq!(owners.revoked("room", &Removal::Token("t2".into())), ["s2"]);
        assert_eq!(owners.revoked("room", &Removal::Token("t4".into())), Vec::<String>::new());
        assert_eq!(owners.revoked("room", &Removal::Everyone), ["s1", "s3"]);
    }

    #[test]
    fn ended_sessions_are_forgotten_when_another_is_recorded() {
        let owners = owners();
        owners.record("s5", "room", "cy", "t5", |id| id != "s1" && id != "s3");
        assert_eq!(owners.revoked("room", &Removal::Everyone), ["s2", "s5"]);
    }
}
