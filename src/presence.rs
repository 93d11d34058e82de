//! Who is in each room: the WebSocket connections of each participant, counted, so that a
//! participant with two tabs joins once (first connection) and leaves once (last one closed).
//! Feeds `participant.joined` / `participant.left`; in memory only (after a restart, everyone
//! who reconnects joins again).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Presence {
    /// (room, participant id) → open connections.
    connections: Mutex<HashMap<(String, String), usize>>,
}

impl Presence {
    /// A connection opened; `true` if it is the participant's first in the room.
    pub fn join(&self, room: &str, participant: &str) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry((room.to_owned(), participant.to_owned())).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Distinct participants connected to `room` now.
    pub fn count(&self, room: &str) -> usize {
        self.connections.lock().unwrap_or_else(|e| e.into_inner()).keys().filter(|(r, _)| r == room).count()
    }

    /// A connection closed; `true` if it was the participant's last in the room.
    pub fn leave(&self, room: &str, participant: &str) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let key = (room.to_owned(), participant.to_owned());
        match map.get_mut(&key) {
            Some(count) if *count > 1 => {
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
        assert!(p.join("r", "a-1"));
        assert!(!p.join("r", "a-1"));
        assert!(p.join("other", "a-1"), "rooms are apart");
        assert!(!p.leave("r", "a-1"));
        assert!(p.leave("r", "a-1"));
        assert!(!p.leave("r", "a-1"), "never leaves twice");
        assert!(p.leave("other", "a-1"));
    }
}
