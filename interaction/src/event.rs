//! Events: the log of everything that happened in a room, and the wire format to clients.
//!
//! Every accepted command becomes one or more [`Event`]s. The room's state is what applying its
//! events in order gives (`room`); the store keeps them (`store`); the WebSocket sends them as they
//! are, one JSON object per message, and the packager copies them into the media (DATERANGE, ID3).
//!
//! # JSON
//! One flat object: the envelope fields, then the `type` tag and that type's fields.
//! ```json
//! {"seq":42,"at":1767225600123,"ts":1767225602480,
//!  "actor":{"participant_id":"u7","name":"Ada","role":"attendee"},"nonce":"c-19",
//!  "type":"chat_message","id":42,"text":"hello","visibility":"everyone"}
//! ```
//! - `seq`: per room, strictly increasing from 1, no gaps; a reconnecting client asks `since`.
//! - `at`: program time in ms ([`ProgramTime`]): show the event when `playingDate ≥ at`.
//! - `ts`: wall-clock ms when the server accepted it.
//! - `actor`: who did it. `nonce`: the client's nonce of the command, if it sent one.
//!
//! Creations carry their new `id` (a chat message's id is its event's `seq`; questions are
//! `q1, q2, …`, polls `p1, p2, …`, chapters `c1, c2, …`); later events name it as `message`,
//! `question` or `poll`.
//!
//! | `type` | fields | who sees it |
//! |---|---|---|
//! | `chat_message` | `id`, `text`, `visibility` (`everyone`/`moderators`) | by visibility |
//! | `chat_deleted` | `message`, `visibility`, `author` (the message's author's id) | by visibility, and `author` |
//! | `chat_pinned` / `chat_unpinned` | `message` | everyone |
//! | `question_asked` | `id`, `text` | everyone |
//! | `question_voted` | `question`, `voted` (the actor's vote after the toggle), `votes` (count) | everyone |
//! | `question_status` | `question`, `status` (`open`/`answering`/`answered`/`dismissed`) | everyone |
//! | `poll_created` | `id`, `question`, `options`, `multiple`, `allow_change` | moderators |
//! | `poll_opened` | the same fields as `poll_created` (self-contained for attendees) | everyone |
//! | `poll_voted` | `poll`, `options` (sorted indexes, from 0) | moderators |
//! | `poll_closed` | `poll`, `counts` (per option), `voters` — the final results | everyone |
//! | `hand_raised` | — (the actor raised) | moderators |
//! | `hand_lowered` | `participant` | moderators |
//! | `hands_cleared` | — | everyone |
//! | `hand_invited` | `participant` (invited to the stage) | moderators |
//! | `chapter_started` | `id`, `title` (the chapter starts at `at`, ends at the next one's) | everyone |
//!
//! Besides "who sees it", a participant always sees the events they did or that name them
//! ([`Event::visible_to_participant`]): their own vote, their own hand, their invitation, the
//! deletion of their message.
//! Individual poll votes are never broadcast to attendees (a vote is private); attendees get live
//! results from the read model ([`crate::PollResults`], from `RoomInteraction::poll_results` for
//! each of `open_polls`), which the WebSocket layer sends throttled.

use serde::{Deserialize, Serialize};

use crate::actor::{Actor, Role};
use crate::clock::ProgramTime;
use crate::qa::QuestionStatus;

/// Who may read a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Everyone,
    /// Hosts and presenters only (and the author).
    Moderators,
}

/// One entry of a room's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Per room, strictly increasing from 1.
    pub seq: u64,
    /// Program time at which viewers see it.
    pub at: ProgramTime,
    /// Wall-clock ms when the server accepted it.
    pub ts: u64,
    /// Who did it.
    pub actor: Actor,
    /// The client's nonce of the command that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// One line per kind, as a table (a field attribute would make rustfmt spread every variant).
#[rustfmt::skip]
pub enum EventKind {
    ChatMessage { id: u64, text: String, visibility: Visibility },
    /// `author`: participant id of the deleted message's author, so that the deletion of a
    /// moderators-only message reaches them; empty in logs written before it existed.
    ChatDeleted { message: u64, visibility: Visibility, #[serde(default)] author: String },
    ChatPinned { message: u64 },
    ChatUnpinned { message: u64 },
    QuestionAsked { id: String, text: String },
    QuestionVoted { question: String, voted: bool, votes: u32 },
    QuestionStatus { question: String, status: QuestionStatus },
    PollCreated { id: String, question: String, options: Vec<String>, multiple: bool, allow_change: bool },
    PollOpened { id: String, question: String, options: Vec<String>, multiple: bool, allow_change: bool },
    PollVoted { poll: String, options: Vec<usize> },
    PollClosed { poll: String, counts: Vec<u32>, voters: u32 },
    HandRaised,
    HandLowered { participant: String },
    HandsCleared,
    HandInvited { participant: String },
    ChapterStarted { id: String, title: String },
}

impl EventKind {
    /// The `type` tag, for logs and the store's index.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ChatMessage { .. } => "chat_message",
            Self::ChatDeleted { .. } => "chat_deleted",
            Self::ChatPinned { .. } => "chat_pinned",
            Self::ChatUnpinned { .. } => "chat_unpinned",
            Self::QuestionAsked { .. } => "question_asked",
            Self::QuestionVoted { .. } => "question_voted",
            Self::QuestionStatus { .. } => "question_status",
            Self::PollCreated { .. } => "poll_created",
            Self::PollOpened { .. } => "poll_opened",
            Self::PollVoted { .. } => "poll_voted",
            Self::PollClosed { .. } => "poll_closed",
            Self::HandRaised => "hand_raised",
            Self::HandLowered { .. } => "hand_lowered",
            Self::HandsCleared => "hands_cleared",
            Self::HandInvited { .. } => "hand_invited",
            Self::ChapterStarted { .. } => "chapter_started",
        }
    }

    /// Who sees events of this kind (besides the participants they concern).
    pub fn audience(&self) -> Visibility {
        match self {
            Self::ChatMessage { visibility, .. } | Self::ChatDeleted { visibility, .. } => *visibility,
            Self::PollCreated { .. }
            | Self::PollVoted { .. }
            | Self::HandRaised
            | Self::HandLowered { .. }
            | Self::HandInvited { .. } => Visibility::Moderators,
            Self::ChatPinned { .. }
            | Self::ChatUnpinned { .. }
            | Self::QuestionAsked { .. }
            | Self::QuestionVoted { .. }
            | Self::QuestionStatus { .. }
            | Self::PollOpened { .. }
            | Self::PollClosed { .. }
            | Self::HandsCleared
            | Self::ChapterStarted { .. } => Visibility::Everyone,
        }
    }
}

impl Event {
    /// The event as its JSON object (the format in the module doc): serialize once, then store
    /// it and send the same text to every client.
    ///
    /// Infallible: `serde_json` fails only when a `Serialize` impl returns an error, when a map
    /// has keys that are not strings, or when `#[serde(flatten)]` meets a value that is not an
    /// object. An `Event` holds only derived impls over strings, integers, booleans, options and
    /// vectors (no maps), and its flattened [`EventKind`] is an internally tagged enum of unit and
    /// struct variants, each an object. The tests serialize every kind, so a new variant that
    /// broke this (a newtype variant over a non-struct, a map with non-string keys) would fail
    /// them, not the server.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an Event always serializes: no maps, no fallible impls")
    }

    /// Whether a participant of this role may see the event: moderator-only chat, drafts,
    /// individual votes and the hand queue are hidden from attendees.
    pub fn visible_to(&self, role: Role) -> bool {
        self.kind.audience() == Visibility::Everyone || role.is_moderator()
    }

    /// Whether `participant_id` did this event or is named by it (its own hand, vote,
    /// invitation, the deletion of its chat message).
    pub fn concerns(&self, participant_id: &str) -> bool {
        self.actor.participant_id == participant_id
            || matches!(&self.kind,
                EventKind::HandLowered { participant }
                | EventKind::HandInvited { participant }
                | EventKind::ChatDeleted { author: participant, .. }
                    if participant == participant_id && !participant.is_empty())
    }

    /// The delivery rule of the WebSocket: [`Event::visible_to`] the role, or it concerns them.
    pub fn visible_to_participant(&self, role: Role, participant_id: &str) -> bool {
        self.visible_to(role) || self.concerns(participant_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            seq: 42,
            at: ProgramTime(1_767_225_600_123),
            ts: 1_767_225_602_480,
            actor: Actor::new("u7", "Ada", Role::Attendee),
            nonce: Some("c-19".into()),
            kind,
        }
    }

    #[test]
    fn json_is_flat_with_a_snake_case_type_tag() {
        let e = event(EventKind::ChatMessage { id: 42, text: "hello".into(), visibility: Visibility::Everyone });
        let json = serde_json::to_string(&e).expect("serializes");
        assert_eq!(
            json,
            r#"{"seq":42,"at":1767225600123,"ts":1767225602480,"actor":{"participant_id":"u7","name":"Ada","role":"attendee"},"nonce":"c-19","type":"chat_message","id":42,"text":"hello","visibility":"everyone"}"#
        );
        assert_eq!(e.to_json(), json);
        let back: Event = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, e);
        let hands = serde_json::to_value(event(EventKind::HandsCleared)).expect("serializes");
        assert_eq!(hands["type"], "hands_cleared");
    }

    #[test]
    fn every_kind_round_trips_and_its_tag_matches_type_name() {
        let kinds = [
            EventKind::ChatDeleted { message: 3, visibility: Visibility::Moderators, author: "u8".into() },
            EventKind::ChatPinned { message: 3 },
            EventKind::ChatUnpinned { message: 3 },
            EventKind::QuestionAsked { id: "q1".into(), text: "why?".into() },
            EventKind::QuestionVoted { question: "q1".into(), voted: true, votes: 1 },
            EventKind::QuestionStatus { question: "q1".into(), status: QuestionStatus::Answering },
            EventKind::PollCreated {
                id: "p1".into(),
                question: "?".into(),
                options: vec!["a".into(), "b".into()],
                multiple: false,
                allow_change: true,
            },
            EventKind::PollOpened {
                id: "p1".into(),
                question: "?".into(),
                options: vec!["a".into(), "b".into()],
                multiple: true,
                allow_change: false,
            },
            EventKind::PollVoted { poll: "p1".into(), options: vec![0] },
            EventKind::HandsCleared,
            EventKind::PollClosed { poll: "p1".into(), counts: vec![1, 0], voters: 1 },
            EventKind::HandRaised,
            EventKind::HandLowered { participant: "u7".into() },
            EventKind::HandInvited { participant: "u7".into() },
            EventKind::ChapterStarted { id: "c1".into(), title: "Intro".into() },
        ];
        for kind in kinds {
            let e = event(kind);
            let v = serde_json::to_value(&e).expect("serializes");
            assert_eq!(v["type"], e.kind.type_name());
            assert_eq!(serde_json::from_value::<Event>(v).expect("parses"), e);
            assert_eq!(serde_json::from_str::<Event>(&e.to_json()).expect("parses"), e);
        }
    }

    #[test]
    fn moderator_only_chat_is_hidden_from_attendees_but_not_from_its_author() {
        let e = event(EventKind::ChatMessage { id: 1, text: "psst".into(), visibility: Visibility::Moderators });
        assert!(!e.visible_to(Role::Attendee));
        assert!(e.visible_to(Role::Presenter));
        assert!(e.visible_to(Role::Host));
        assert!(e.visible_to_participant(Role::Attendee, "u7"));
        assert!(!e.visible_to_participant(Role::Attendee, "u8"));
    }

    #[test]
    fn deleting_a_moderators_only_message_reaches_its_author_only() {
        let mut e =
            event(EventKind::ChatDeleted { message: 3, visibility: Visibility::Moderators, author: "u9".into() });
        e.actor = Actor::new("h1", "Host", Role::Host);
        assert!(e.visible_to_participant(Role::Attendee, "u9"));
        assert!(!e.visible_to_participant(Role::Attendee, "u7"));
        assert!(e.visible_to_participant(Role::Presenter, "p1"));
    }

    #[test]
    fn a_chat_deleted_of_an_old_log_without_author_still_reads() {
        let old = r#"{"seq":5,"at":1000,"ts":2000,"actor":{"participant_id":"h1","name":"Host","role":"host"},"type":"chat_deleted","message":3,"visibility":"moderators"}"#;
        let e: Event = serde_json::from_str(old).expect("parses");
        assert_eq!(
            e.kind,
            EventKind::ChatDeleted { message: 3, visibility: Visibility::Moderators, author: String::new() }
        );
        // An unknown author concerns nobody, not even a participant with an empty id.
        assert!(!e.visible_to_participant(Role::Attendee, ""));
        assert!(e.visible_to_participant(Role::Host, "h2"));
    }

    #[test]
    fn an_invitation_reaches_the_invited_attendee_only() {
        let mut e = event(EventKind::HandInvited { participant: "u9".into() });
        e.actor = Actor::new("h1", "Host", Role::Host);
        assert!(e.visible_to_participant(Role::Attendee, "u9"));
        assert!(!e.visible_to_participant(Role::Attendee, "u7"));
    }
}
