//! Where the event logs live: the [`EventStore`] trait, and [`MemoryStore`] for tests.
//!
//! A store keeps each room's events in `seq` order and nothing else: the state is rebuilt from
//! them ([`crate::RoomInteraction::restore`]). [`crate::SqliteStore`] is the default; a server
//! database can implement the same trait. Methods are blocking: async callers run them on a
//! blocking thread (`spawn_blocking`).

use std::collections::BTreeMap;

use crate::error::{InteractionError, Result};
use crate::event::Event;

/// The event logs of every room.
pub trait EventStore: Send {
    /// Appends events of `room`, all or none. Their `seq`s must increase and be above every
    /// stored one of the room ([`InteractionError::OutOfOrder`] otherwise, nothing stored).
    fn append(&mut self, room: &str, events: &[Event]) -> Result<()>;

    /// Every event of `room`, in `seq` order (empty for an unknown room).
    fn load(&self, room: &str) -> Result<Vec<Event>>;

    /// The events of `room` with `seq` above `seq`, in order, at most `limit` of them (a client
    /// that reconnects with `since`).
    fn since(&self, room: &str, seq: u64, limit: usize) -> Result<Vec<Event>>;

    /// The `seq` of the last stored event of `room`, 0 if none.
    fn last_seq(&self, room: &str) -> Result<u64>;

    /// The rooms that have events, sorted.
    fn rooms(&self) -> Result<Vec<String>>;

    /// Forgets every event of `room`.
    fn delete_room(&mut self, room: &str) -> Result<()>;
}

/// Checks that `events` may follow a log whose last `seq` is `last`.
pub(crate) fn check_order(last: u64, events: &[Event]) -> Result<()> {
    let mut last = last;
    for e in events {
        if e.seq <= last {
            return Err(InteractionError::OutOfOrder { seq: e.seq, last });
        }
        last = e.seq;
    }
    Ok(())
}

/// A store in memory: for tests, and the reference behaviour of the trait.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    rooms: BTreeMap<String, Vec<Event>>,
}

impl EventStore for MemoryStore {
    fn append(&mut self, room: &str, events: &[Event]) -> Result<()> {
        check_order(self.last_seq(room)?, events)?;
        if !events.is_empty() {
            self.rooms.entry(room.to_owned()).or_default().extend_from_slice(events);
        }
        Ok(())
    }

    fn load(&self, room: &str) -> Result<Vec<Event>> {
        Ok(self.rooms.get(room).cloned().unwrap_or_default())
    }

    fn since(&self, room: &str, seq: u64, limit: usize) -> Result<Vec<Event>> {
        let events = self.rooms.get(room).map(Vec::as_slice).unwrap_or_default();
        let start = events.partition_point(|e| e.seq <= seq);
        Ok(events[start..].iter().take(limit).cloned().collect())
    }

    fn last_seq(&self, room: &str) -> Result<u64> {
        Ok(self.rooms.get(room).and_then(|events| events.last()).map_or(0, |e| e.seq))
    }

    fn rooms(&self) -> Result<Vec<String>> {
        Ok(self.rooms.keys().cloned().collect())
    }

    fn delete_room(&mut self, room: &str) -> Result<()> {
        self.rooms.remove(room);
        Ok(())
    }
}

/// Behaviour every store must have; run by each implementation's tests.
#[cfg(test)]
pub(crate) mod contract {
    use super::*;
    use crate::testutil::*;
    use crate::{Command, Visibility};

    /// Three chat events of room "r1" with seq 1, 2, 3.
    pub fn three_events() -> Vec<Event> {
        let mut room = room();
        (0..3)
            .flat_map(|i| {
                let send = Command::ChatSend { text: format!("m{i}"), visibility: Visibility::Everyone };
                room.handle(&host(), send, T0, AT0).map(|h| h.events).unwrap_or_default()
            })
            .collect()
    }

    pub fn check(store: &mut dyn EventStore) {
        let events = three_events();
        assert_eq!(store.last_seq("r1"), Ok(0));
        store.append("r1", &events[..2]).expect("append");
        store.append("r1", &events[2..]).expect("append");
        store.append("r1", &[]).expect("append nothing");
        store.append("r2", &events[..1]).expect("another room");
        assert_eq!(store.load("r1"), Ok(events.clone()));
        assert_eq!(store.last_seq("r1"), Ok(3));
        assert_eq!(store.since("r1", 1, 100), Ok(events[1..].to_vec()));
        assert_eq!(store.since("r1", 1, 1), Ok(events[1..2].to_vec()));
        assert_eq!(store.since("r1", 3, 100), Ok(Vec::new()));
        assert_eq!(store.load("nope"), Ok(Vec::new()));
        assert_eq!(store.rooms(), Ok(vec!["r1".to_owned(), "r2".to_owned()]));

        // Nothing stored twice, and a batch is all or none.
        let again = store.append("r1", &events[2..]);
        assert_eq!(again, Err(InteractionError::OutOfOrder { seq: 3, last: 3 }));
        let mut batch = events.clone();
        for (e, seq) in batch.iter_mut().zip([4, 5, 5]) {
            e.seq = seq;
        }
        assert!(store.append("r1", &batch).is_err());
        assert_eq!(store.last_seq("r1"), Ok(3));

        store.delete_room("r1").expect("delete");
        assert_eq!(store.load("r1"), Ok(Vec::new()));
        assert_eq!(store.rooms(), Ok(vec!["r2".to_owned()]));
        store.append("r1", &events).expect("a deleted room starts over");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_contract() {
        contract::check(&mut MemoryStore::default());
    }
}
