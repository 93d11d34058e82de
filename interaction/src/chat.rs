//! Chat: messages, moderation (delete, pin) and history pages.
//!
//! Rules: a message is trimmed UTF-8 text of 1 to `chat_max_chars` characters; `visibility:
//! moderators` messages are read by hosts, presenters and their author only. Moderators delete any
//! message, authors their own; moderators pin one message at a time (pinning another replaces it;
//! a moderators-only message cannot be pinned; deleting the pinned message unpins it). A message's
//! id is the `seq` of its `chat_message` event, so ids grow with time and page by `before`.
//! The rate limit is the room's (it holds the buckets).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::actor::Actor;
use crate::clock::ProgramTime;
use crate::config::InteractionConfig;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind, Visibility};
use crate::text;

/// Most messages in one history page.
pub const PAGE_MAX: usize = 100;

/// One chat message as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub id: u64,
    pub at: ProgramTime,
    pub ts: u64,
    pub author: Actor,
    pub text: String,
    pub visibility: Visibility,
}

impl ChatMessage {
    fn readable_by(&self, viewer: &Actor) -> bool {
        self.visibility == Visibility::Everyone
            || viewer.role.is_moderator()
            || self.author.participant_id == viewer.participant_id
    }
}

/// A page of history, oldest first. When `more` is true, ask again with `before` = the first id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatPage {
    pub messages: Vec<ChatMessage>,
    pub more: bool,
}

/// A room's chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chat {
    messages: BTreeMap<u64, ChatMessage>,
    pinned: Option<u64>,
}

impl Chat {
    /// Checks a new message; `id` is the seq its event will get.
    pub(crate) fn send(config: &InteractionConfig, text: &str, visibility: Visibility, id: u64) -> Result<EventKind> {
        let text = text::clean("text", text, config.chat_max_chars)?;
        Ok(EventKind::ChatMessage { id, text, visibility })
    }

    pub(crate) fn delete(&self, actor: &Actor, message: u64) -> Result<Vec<EventKind>> {
        let m = self.get(message)?;
        if !actor.role.is_moderator() && m.author.participant_id != actor.participant_id {
            return Err(InteractionError::NotAllowed { action: "chat_delete" });
        }
        Ok(vec![EventKind::ChatDeleted { message, visibility: m.visibility, author: m.author.participant_id.clone() }])
    }

    pub(crate) fn pin(&self, actor: &Actor, message: u64) -> Result<Vec<EventKind>> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "chat_pin" });
        }
        if self.get(message)?.visibility != Visibility::Everyone {
            return Err(InteractionError::NotAllowed { action: "chat_pin of a moderators-only message" });
        }
        if self.pinned == Some(message) {
            return Ok(Vec::new());
        }
        Ok(vec![EventKind::ChatPinned { message }])
    }

    pub(crate) fn unpin(&self, actor: &Actor) -> Result<Vec<EventKind>> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "chat_unpin" });
        }
        Ok(self.pinned.map(|message| EventKind::ChatUnpinned { message }).into_iter().collect())
    }

    /// Applies a chat event; keeps at most `kept` messages (the oldest go first).
    pub(crate) fn apply(&mut self, event: &Event, kept: usize) {
        match &event.kind {
            EventKind::ChatMessage { id, text, visibility } => {
                let message = ChatMessage {
                    id: *id,
                    at: event.at,
                    ts: event.ts,
                    author: event.actor.clone(),
                    text: text.clone(),
                    visibility: *visibility,
                };
                self.messages.insert(*id, message);
                while self.messages.len() > kept {
                    if let Some((old, _)) = self.messages.pop_first()
                        && self.pinned == Some(old)
                    {
                        self.pinned = None;
                    }
                }
            }
            EventKind::ChatDeleted { message, .. } => {
                self.messages.remove(message);
                if self.pinned == Some(*message) {
                    self.pinned = None;
                }
            }
            EventKind::ChatPinned { message } => self.pinned = Some(*message),
            EventKind::ChatUnpinned { message } if self.pinned == Some(*message) => self.pinned = None,
            _ => {}
        }
    }

    fn get(&self, message: u64) -> Result<&ChatMessage> {
        self.messages.get(&message).ok_or(InteractionError::UnknownMessage(message))
    }

    /// Up to `limit` (at most [`PAGE_MAX`]) messages `viewer` may read, with ids below `before`
    /// (absent: the newest), oldest first.
    pub fn page(&self, viewer: &Actor, before: Option<u64>, limit: usize) -> ChatPage {
        let limit = limit.min(PAGE_MAX);
        let mut readable =
            self.messages.range(..before.unwrap_or(u64::MAX)).rev().map(|(_, m)| m).filter(|m| m.readable_by(viewer));
        let mut messages: Vec<ChatMessage> = readable.by_ref().take(limit).cloned().collect();
        let more = readable.next().is_some();
        messages.reverse();
        ChatPage { messages, more }
    }

    /// The pinned message (always one everybody may read).
    pub fn pinned(&self) -> Option<&ChatMessage> {
        self.pinned.and_then(|id| self.messages.get(&id))
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Command, InteractionError, Visibility};

    fn send(text: &str) -> Command {
        Command::ChatSend { text: text.into(), visibility: Visibility::Everyone }
    }

    #[test]
    fn oversized_and_empty_messages_are_refused_and_not_stored() {
        let mut room = room();
        let a = attendee("a");
        assert_eq!(room.exec(&a, send("   "), T0, AT0), Err(InteractionError::Empty { field: "text" }));
        let long = "é".repeat(501);
        assert_eq!(
            room.exec(&a, send(&long), T0, AT0),
            Err(InteractionError::TooLong { field: "text", len: 501, max: 500 })
        );
        assert_eq!(room.last_seq(), 0);
        let ok = room.exec(&a, send(&"é".repeat(500)), T0, AT0).expect("500 characters fit");
        assert_eq!(ok.len(), 1);
        assert_eq!(room.history(&a, None, 10).messages.len(), 1);
    }

    #[test]
    fn a_flood_is_cut_at_the_burst_and_refills_with_time() {
        let mut room = room();
        let a = attendee("a");
        for i in 0..5 {
            room.exec(&a, send(&format!("m{i}")), T0, AT0).expect("within the burst");
        }
        assert_eq!(room.exec(&a, send("m5"), T0, AT0), Err(InteractionError::RateLimited { retry_after_ms: 1_000 }));
        // Refused messages are not stored and do not use tokens.
        assert_eq!(room.last_seq(), 5);
        // Another attendee is not affected; a moderator is exempt.
        room.exec(&attendee("b"), send("hi"), T0, AT0).expect("own bucket");
        for i in 0..20 {
            room.exec(&host(), send(&format!("h{i}")), T0, AT0).expect("moderators are exempt");
        }
        room.exec(&a, send("m5"), T0 + 1_000, AT0).expect("refilled one");
        assert!(room.exec(&a, send("m6"), T0 + 1_000, AT0).is_err());
    }

    #[test]
    fn moderators_delete_and_pin_attendees_may_not() {
        let mut room = room();
        let (a, b) = (attendee("a"), attendee("b"));
        let id = room.exec(&a, send("first"), T0, AT0).expect("sent")[0].seq;
        let second = room.exec(&b, send("second"), T0, AT0).expect("sent")[0].seq;
        let not_allowed = |e: InteractionError| e.code() == "not_allowed";
        assert!(room.exec(&b, Command::ChatDelete { message: id }, T0, AT0).is_err_and(not_allowed));
        assert!(room.exec(&a, Command::ChatPin { message: id }, T0, AT0).is_err_and(not_allowed));
        assert!(room.exec(&a, Command::ChatUnpin, T0, AT0).is_err_and(not_allowed));
        // The author may delete their own.
        room.exec(&b, Command::ChatDelete { message: second }, T0, AT0).expect("own message");

        let pinned = room.exec(&presenter(), Command::ChatPin { message: id }, T0, AT0).expect("pin");
        assert_eq!(pinned.len(), 1);
        assert!(room.exec(&host(), Command::ChatPin { message: id }, T0, AT0).expect("again").is_empty());
        assert_eq!(room.snapshot(&a).pinned.map(|m| m.id), Some(id));
        room.exec(&host(), Command::ChatDelete { message: id }, T0, AT0).expect("delete");
        assert_eq!(room.snapshot(&a).pinned, None);
        assert_eq!(room.history(&a, None, 10).messages.len(), 0);
        assert_eq!(
            room.exec(&host(), Command::ChatDelete { message: id }, T0, AT0),
            Err(InteractionError::UnknownMessage(id))
        );
        assert!(room.exec(&host(), Command::ChatUnpin, T0, AT0).expect("nothing pinned").is_empty());
    }

    #[test]
    fn moderator_only_messages_reach_moderators_and_their_author() {
        let mut room = room();
        let a = attendee("a");
        let private = Command::ChatSend { text: "to the hosts".into(), visibility: Visibility::Moderators };
        let events = room.exec(&a, private, T0, AT0).expect("sent");
        room.exec(&attendee("b"), send("public"), T0, AT0).expect("sent");
        assert!(!events[0].visible_to(crate::Role::Attendee));
        assert_eq!(room.history(&attendee("b"), None, 10).messages.len(), 1);
        assert_eq!(room.history(&a, None, 10).messages.len(), 2);
        assert_eq!(room.history(&presenter(), None, 10).messages.len(), 2);
        let pin = room.exec(&host(), Command::ChatPin { message: events[0].seq }, T0, AT0);
        assert!(pin.is_err_and(|e| e.code() == "not_allowed"));
        // Its deletion by a moderator names the author, who is told; other attendees are not.
        let deleted = room.exec(&host(), Command::ChatDelete { message: events[0].seq }, T0, AT0).expect("deleted");
        assert!(matches!(&deleted[0].kind, crate::EventKind::ChatDeleted { author, .. } if author == "a"));
        assert!(deleted[0].visible_to_participant(crate::Role::Attendee, "a"));
        assert!(!deleted[0].visible_to_participant(crate::Role::Attendee, "b"));
    }

    #[test]
    fn history_pages_backwards_with_before_and_caps_the_limit() {
        let mut room = room();
        for i in 0..250 {
            room.exec(&host(), send(&format!("m{i}")), T0, AT0).expect("sent");
        }
        let viewer = attendee("v");
        let page = room.history(&viewer, None, 1_000);
        assert_eq!(page.messages.len(), 100);
        assert!(page.more);
        assert_eq!(page.messages.last().map(|m| m.text.as_str()), Some("m249"));
        assert_eq!(page.messages[0].text, "m150");
        let older = room.history(&viewer, Some(page.messages[0].id), 100);
        assert_eq!(older.messages.last().map(|m| m.text.as_str()), Some("m149"));
        let oldest = room.history(&viewer, Some(older.messages[0].id), 100);
        assert_eq!(oldest.messages.len(), 50);
        assert!(!oldest.more);
        assert_eq!(oldest.messages[0].text, "m0");
    }
}
