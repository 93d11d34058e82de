//! Who is in each room: the WebSocket connections of each participant, counted, so that a
//! participant with two tabs joins once (first connection) and leaves once (last one closed).
//! Feeds `participant.joined` / `participant.left`; in memory only (after a restart, everyone
//! who reconnects joins again). Each is known by name and role too: breakout rooms split the attendees connected ([`Presence::attendees`]).

use std::collections::HashMap;
use std::sync::Mutex;

use townhall_interaction::{Actor, Role};

#[derive(Debug, Default)]
pub struct Presence {
    /// (room, participant id) → open connections, and who it is.
    connections: Mutex<HashMap<(String, String), (usize, Actor)>>,
}

impl Presence {
    /// A connection of `actor` opened; `true` if it is the participant's first in the room.
    pub fn join_as(&self, room: &str, actor: &Actor) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let (count, who) = map.entry((room.to_owned(), actor.participant_id.clone())).or_insert((0, actor.clone()));
        *count += 1;
        *who = actor.clone();
        *count == 1
    }

    /// Distinct participants connected to `room` now.
    pub fn count(&self, room: &str) -> usize {
        self.connections.lock().unwrap_or_else(|e| e.into_inner()).keys().filter(|(r, _)| r == room).count()
    }

    /// The attendees connected to a room, by participant id.
    pub fn attendees(&self, room: &str) -> Vec<Actor> {
        let map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let mut attendees: Vec<Actor> = map
            .iter()
            .filter(|((r, _), _)| r == room)
            .map(|(_, (_, who))| who.clone())
            .filter(|a| a.role == Role::Attendee)
            .collect();
        attendees.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        attendees
    }

    /// A connection closed; `true` if it was the participant's last in the room.
    pub fn leave(&self, room: &str, participant: &str) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let key = (room.to_owned(), participant.to_owned());
        match map.get_mut(&key) {
            Some((count, _)) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                map.remove(&key);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_on_the_first_connection_and_leaves_on_the_last() {
        let p = Presence::default();
        let a1 = Actor::new("a-1", "Al", Role::Attendee);
        assert!(p.join_as("r", &a1));
        assert!(!p.join_as("r", &a1));
        assert!(p.join_as("other", &a1), "rooms are apart");
        assert!(!p.leave("r", "a-1"));
        assert!(p.leave("r", "a-1"));
        assert!(!p.leave("r", "a-1"), "never leaves twice");
        assert!(p.leave("other", "a-1"));
    }

    #[test]
    fn knows_the_attendees_connected_by_name() {
        let p = Presence::default();
        p.join_as("r", &Actor::new("a-2", "Bea", Role::Attendee));
        p.join_as("r", &Actor::new("a-1", "Al", Role::Attendee));
        p.join_as("r", &Actor::new("host", "Host", Role::Host));
        p.join_as("other", &Actor::new("a-3", "Cy", Role::Attendee));
        let names = |p: &Presence| p.attendees("r").into_iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(names(&p), ["Al", "Bea"]);
        p.join_as("r", &Actor::new("a-1", "Al", Role::Attendee));
        p.leave("r", "a-1");
        assert_eq!(names(&p), ["Al", "Bea"], "one of two connections left");
        p.leave("r", "a-1");
        assert_eq!(names(&p), ["Bea"]);
    }
}
