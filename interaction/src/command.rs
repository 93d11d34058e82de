//! Commands: what a client asks for, in the WebSocket's JSON.
//!
//! One JSON object per message: a snake_case `type`, that type's fields, and an optional
//! `nonce` (a client-chosen string, at most 64 characters). The same (participant, nonce) handled
//! twice, e.g. resent after a reconnect, returns the events it produced the first time and stores
//! nothing new.
//! ```json
//! {"type":"chat_send","text":"hi","nonce":"c-19"}
//! {"type":"poll_vote","poll":"p3","options":[1]}
//! ```
//!
//! | `type` | fields | who may |
//! |---|---|---|
//! | `chat_send` | `text`, `visibility` (`everyone` by default, or `moderators`) | everyone |
//! | `chat_delete` | `message` (id) | moderators, and the author for their own |
//! | `chat_pin` / `chat_unpin` | `message` / — | moderators |
//! | `question_ask` | `text` | everyone |
//! | `question_upvote` | `question` (toggles the actor's vote) | everyone |
//! | `question_mark` | `question`, `status` (`open`/`answering`/`answered`/`dismissed`) | moderators |
//! | `poll_create` | `question`, `options` (2–10), `multiple` (false), `allow_change` (true) | moderators |
//! | `poll_open` / `poll_close` | `poll` | moderators |
//! | `poll_vote` | `poll`, `options` (indexes from 0: one, or ≥ 1 distinct if `multiple`) | everyone |
//! | `hand_raise` / `hand_lower` | — | everyone (their own hand) |
//! | `hand_clear` | `participant` (absent: all hands) | moderators |
//! | `hand_invite` | `participant` (to the stage) | the host |
//! | `chapter_start` | `title` (1–120 characters; the chapter runs until the next one) | moderators |
//!
//! A command that asks for a state that already holds (raise a raised hand, lower a lowered one,
//! vote the same choice again, mark a question with its status, pin the pinned message, unpin
//! when nothing is pinned) succeeds with no events: retries and double clicks are harmless.

use serde::{Deserialize, Serialize};

use crate::error::{InteractionError, Result};
use crate::event::Visibility;
use crate::qa::QuestionStatus;

/// Longest accepted nonce, in characters.
pub const NONCE_MAX_CHARS: usize = 64;

/// A command with its optional client nonce: the object a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    /// Reads a client message; anything unreadable is [`InteractionError::Malformed`].
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| InteractionError::Malformed(e.to_string()))
    }

    /// The same, from raw bytes (a binary frame): non-UTF-8 input is malformed.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| InteractionError::Malformed(e.to_string()))
    }

    pub fn with_nonce(command: Command, nonce: impl Into<String>) -> Self {
        Self { nonce: Some(nonce.into()), command }
    }
}

impl From<Command> for Request {
    fn from(command: Command) -> Self {
        Self { nonce: None, command }
    }
}

/// What a participant asks the room to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    ChatSend {
        text: String,
        #[serde(default)]
        visibility: Visibility,
    },
    ChatDelete {
        message: u64,
    },
    ChatPin {
        message: u64,
    },
    ChatUnpin,
    QuestionAsk {
        text: String,
    },
    QuestionUpvote {
        question: String,
    },
    QuestionMark {
        question: String,
        status: QuestionStatus,
    },
    PollCreate {
        question: String,
        options: Vec<String>,
        #[serde(default)]
        multiple: bool,
        #[serde(default = "yes")]
        allow_change: bool,
    },
    PollOpen {
        poll: String,
    },
    PollVote {
        poll: String,
        options: Vec<usize>,
    },
    PollClose {
        poll: String,
    },
    HandRaise,
    HandLower,
    HandClear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participant: Option<String>,
    },
    HandInvite {
        participant: String,
    },
    ChapterStart {
        title: String,
    },
}

fn yes() -> bool {
    true
}

impl Command {
    /// The `type` tag, for logs and permission errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ChatSend { .. } => "chat_send",
            Self::ChatDelete { .. } => "chat_delete",
            Self::ChatPin { .. } => "chat_pin",
            Self::ChatUnpin => "chat_unpin",
            Self::QuestionAsk { .. } => "question_ask",
            Self::QuestionUpvote { .. } => "question_upvote",
            Self::QuestionMark { .. } => "question_mark",
            Self::PollCreate { .. } => "poll_create",
            Self::PollOpen { .. } => "poll_open",
            Self::PollVote { .. } => "poll_vote",
            Self::PollClose { .. } => "poll_close",
            Self::HandRaise => "hand_raise",
            Self::HandLower => "hand_lower",
            Self::HandClear { .. } => "hand_clear",
            Self::HandInvite { .. } => "hand_invite",
            Self::ChapterStart { .. } => "chapter_start",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shapes() {
        let r = Request::from_json(r#"{"type":"chat_send","text":"hi","nonce":"c-19"}"#).expect("parses");
        assert_eq!(r.nonce.as_deref(), Some("c-19"));
        assert_eq!(r.command, Command::ChatSend { text: "hi".into(), visibility: Visibility::Everyone });
        let r = Request::from_json(r#"{"type":"poll_vote","poll":"p3","options":[1]}"#).expect("parses");
        assert_eq!(r, Request::from(Command::PollVote { poll: "p3".into(), options: vec![1] }));
        let r = Request::from_json(r#"{"type":"poll_create","question":"?","options":["a","b"]}"#).expect("parses");
        assert!(matches!(r.command, Command::PollCreate { multiple: false, allow_change: true, .. }));
        let r = Request::from_json(r#"{"type":"hand_clear"}"#).expect("parses");
        assert_eq!(r.command, Command::HandClear { participant: None });
        let r = Request::from_json(r#"{"type":"question_mark","question":"q1","status":"answering"}"#).expect("parses");
        assert_eq!(r.command, Command::QuestionMark { question: "q1".into(), status: QuestionStatus::Answering });
    }

    #[test]
    fn writes_what_it_reads() {
        let r = Request::with_nonce(Command::HandRaise, "n1");
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(json, r#"{"nonce":"n1","type":"hand_raise"}"#);
        assert_eq!(Request::from_json(&json), Ok(r));
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"text":"no type"}"#,
            r#"{"type":"chat_shout","text":"x"}"#,
            r#"{"type":"chat_send"}"#,
            r#"{"type":"poll_vote","poll":"p1","options":[-1]}"#,
            r#"{"type":"question_mark","question":"q1","status":"done"}"#,
        ] {
            let e = Request::from_json(bad).expect_err(bad);
            assert_eq!(e.code(), "malformed", "{bad}");
        }
        let e = Request::from_slice(b"{\"type\":\"chat_send\",\"text\":\"\xff\"}").expect_err("non-UTF-8");
        assert_eq!(e.code(), "malformed");
    }
}
