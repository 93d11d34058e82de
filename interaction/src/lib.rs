//! townhall's interaction: chat, Q&A, polls and raised hands, on the media clock.
//!
//! Everything but [`sqlite`] is sans-IO: no clock reads, no I/O, no async. Time comes in as
//! arguments: the wall clock as `now_ms` and the program time `at` ([`clock::stamp`]).
//!
//! - [`room`]: [`RoomInteraction`], one room's state machine. Commands in ([`command`], the
//!   WebSocket's JSON), events out ([`event`], the log and the wire format); the state is what
//!   applying the events in order gives, so a restart replays the stored log.
//! - [`chat`], [`qa`], [`polls`], [`hands`], [`chapters`]: the rules of each feature and their read models.
//! - [`error`]: [`InteractionError`], each with an HTTP status and a stable code.
//! - [`store`]: the [`EventStore`] trait and an in-memory store; [`sqlite`]: [`SqliteStore`].

pub mod actor;
pub mod chapters;
pub mod chat;
pub mod clock;
pub mod command;
pub mod config;
pub mod error;
pub mod event;
pub mod hands;
pub mod polls;
pub mod qa;
mod ratelimit;
pub mod room;
pub mod sqlite;
pub mod store;
mod text;

#[cfg(test)]
mod session;
#[cfg(test)]
mod testutil;

pub use actor::{Actor, Role};
pub use chapters::ChapterView;
pub use chat::{ChatMessage, ChatPage};
pub use clock::{LiveEdge, ProgramTime, stamp};
pub use command::{Command, Request};
pub use config::{InteractionConfig, RateLimit};
pub use error::{InteractionError, Result};
pub use event::{Event, EventKind, Visibility};
pub use hands::{Hand, Invitation};
pub use polls::{PollOption, PollResults, PollState, PollView};
pub use qa::{QuestionStatus, QuestionView};
pub use room::{Handled, RoomInteraction, RoomState, Snapshot};
pub use sqlite::SqliteStore;
pub use store::{EventStore, MemoryStore};
