//! Fixtures shared by the unit tests.

use crate::{Actor, InteractionConfig, ProgramTime, Role, RoomInteraction};

/// Wall clock of the tests: 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600_000;
/// Program time of the tests: 2.5 s behind the wall clock.
pub const AT0: ProgramTime = ProgramTime(T0 - 2_500);

pub fn room() -> RoomInteraction {
    RoomInteraction::new(InteractionConfig::default())
}

pub fn attendee(id: &str) -> Actor {
    Actor::new(id, id, Role::Attendee)
}

pub fn host() -> Actor {
    Actor::new("host", "Hosting Hannah", Role::Host)
}

pub fn presenter() -> Actor {
    Actor::new("presenter", "Presenting Pat", Role::Presenter)
}

/// `handle` that returns the events only, for tests that do not look at replays.
pub trait Exec {
    fn exec(
        &mut self,
        actor: &Actor,
        request: impl Into<crate::Request>,
        now_ms: u64,
        at: ProgramTime,
    ) -> crate::Result<Vec<crate::Event>>;
}

impl Exec for RoomInteraction {
    fn exec(
        &mut self,
        actor: &Actor,
        request: impl Into<crate::Request>,
        now_ms: u64,
        at: ProgramTime,
    ) -> crate::Result<Vec<crate::Event>> {
        self.handle(actor, request, now_ms, at).map(|h| h.events)
    }
}

/// A room and the log of every new event it made, as a store would hold it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub room: RoomInteraction,
    pub log: Vec<crate::Event>,
    /// Requests answered from the nonce memory.
    pub replays: usize,
}

impl Default for Logged {
    fn default() -> Self {
        Self { room: room(), log: Vec::new(), replays: 0 }
    }
}

impl Logged {
    pub fn run(
        &mut self,
        actor: &Actor,
        request: impl Into<crate::Request>,
        now_ms: u64,
        at: ProgramTime,
    ) -> crate::Result<crate::Handled> {
        let handled = self.room.handle(actor, request, now_ms, at)?;
        if handled.replayed {
            self.replays += 1;
        } else {
            self.log.extend(handled.events.iter().cloned());
        }
        Ok(handled)
    }
}
