//! Who does something in a room: a participant with a role.
//!
//! Roles come from the room's tokens (the binary checks them); this crate only asks
//! [`Role::is_moderator`] (Host or Presenter) and, for stage invitations, whether the actor is
//! the Host.

use serde::{Deserialize, Serialize};

/// A participant's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the webinar: moderates, switches the program, invites to the stage.
    Host,
    /// Speaks on the stage; moderates chat, Q&A, polls and hands like the host.
    Presenter,
    /// Watches the program; chats, asks, upvotes, votes, raises a hand.
    Attendee,
}

impl Role {
    /// Host or Presenter.
    pub fn is_moderator(self) -> bool {
        matches!(self, Role::Host | Role::Presenter)
    }
}

/// The participant behind a command or an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// Stable id of the participant in the room (from the token).
    pub participant_id: String,
    /// Display name.
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn new(participant_id: impl Into<String>, name: impl Into<String>, role: Role) -> Self {
        Self { participant_id: participant_id.into(), name: name.into(), role }
    }
}
