//! The one error type of the interaction crate.
//!
//! Every variant maps to an HTTP status ([`InteractionError::status`]) and a stable snake_case
//! code ([`InteractionError::code`]); the WebSocket layer sends them as
//! `{"type":"error","code":"poll_closed","detail":"poll p3 is closed"}` (the detail is the
//! `Display` text, for people; clients branch on the code). Codes never change once released.

/// What went wrong with a command, or with the event store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    /// The JSON of a command could not be read (bad JSON, unknown `type`, missing field).
    #[error("malformed command: {0}")]
    Malformed(String),
    /// No poll has this id.
    #[error("unknown poll {0}")]
    UnknownPoll(String),
    /// No question has this id.
    #[error("unknown question {0}")]
    UnknownQuestion(String),
    /// No chat message has this id (never sent, deleted, or older than the history kept).
    #[error("unknown chat message {0}")]
    UnknownMessage(u64),
    /// The poll is still a draft: it takes no votes and cannot be closed yet.
    #[error("poll {0} is not open")]
    PollNotOpen(String),
    /// The poll is already open.
    #[error("poll {0} is already open")]
    PollAlreadyOpen(String),
    /// The poll is closed: its results are final.
    #[error("poll {0} is closed")]
    PollClosed(String),
    /// The participant has voted on a poll that does not allow changing a vote.
    #[error("already voted on poll {0}")]
    AlreadyVoted(String),
    /// The actor's role does not allow this command.
    #[error("not allowed: {action}")]
    NotAllowed { action: &'static str },
    /// Too many messages too fast; try again after `retry_after_ms`.
    #[error("rate limited: retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// A text is longer than allowed (counted in Unicode scalar values).
    #[error("{field} too long: {len} characters, at most {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
    /// A text is empty once trimmed.
    #[error("{field} is empty")]
    Empty { field: &'static str },
    /// A poll needs between `min` and `max` options.
    #[error("a poll needs {min} to {max} options, got {count}")]
    InvalidOptionCount { count: usize, min: usize, max: usize },
    /// Two options of a poll are the same (compared trimmed, case-insensitively).
    #[error("duplicate poll option {0:?}")]
    DuplicateOption(String),
    /// A vote that the poll cannot take: no option, several on a single-choice poll, an index
    /// out of range, or the same option twice.
    #[error("invalid choice: {0}")]
    InvalidChoice(&'static str),
    /// An event that cannot follow the log (its seq is not above the last one).
    #[error("event out of order: seq {seq} after {last}")]
    OutOfOrder { seq: u64, last: u64 },
    /// The event store failed (I/O, SQLite, a stored event that does not parse).
    #[error("storage: {0}")]
    Storage(String),
}

/// The result of every fallible function in this crate.
pub type Result<T> = std::result::Result<T, InteractionError>;

impl InteractionError {
    /// The stable snake_case code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnknownPoll(_) => "unknown_poll",
            Self::UnknownQuestion(_) => "unknown_question",
            Self::UnknownMessage(_) => "unknown_message",
            Self::PollNotOpen(_) => "poll_not_open",
            Self::PollAlreadyOpen(_) => "poll_already_open",
            Self::PollClosed(_) => "poll_closed",
            Self::AlreadyVoted(_) => "already_voted",
            Self::NotAllowed { .. } => "not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooLong { .. } => "too_long",
            Self::Empty { .. } => "empty",
            Self::InvalidOptionCount { .. } => "invalid_option_count",
            Self::DuplicateOption(_) => "duplicate_option",
            Self::InvalidChoice(_) => "invalid_choice",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::Storage(_) => "storage",
        }
    }

    /// The HTTP status that fits: 400 bad input, 403 role, 404 unknown id, 409 state conflict,
    /// 413 too long, 429 rate limit, 500 the server's own fault.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_)
            | Self::Empty { .. }
            | Self::InvalidOptionCount { .. }
            | Self::DuplicateOption(_)
            | Self::InvalidChoice(_) => 400,
            Self::NotAllowed { .. } => 403,
            Self::UnknownPoll(_) | Self::UnknownQuestion(_) | Self::UnknownMessage(_) => 404,
            Self::PollNotOpen(_) | Self::PollAlreadyOpen(_) | Self::PollClosed(_) | Self::AlreadyVoted(_) => 409,
            Self::TooLong { .. } => 413,
            Self::RateLimited { .. } => 429,
            Self::OutOfOrder { .. } | Self::Storage(_) => 500,
        }
    }

    /// For a rate-limited command: how long to wait, in milliseconds (HTTP `Retry-After`).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for InteractionError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_statuses_are_http() {
        let all = [
            InteractionError::Malformed("x".into()),
            InteractionError::UnknownPoll("p1".into()),
            InteractionError::PollClosed("p1".into()),
            InteractionError::NotAllowed { action: "poll_open" },
            InteractionError::RateLimited { retry_after_ms: 900 },
            InteractionError::TooLong { field: "text", len: 501, max: 500 },
            InteractionError::Storage("disk".into()),
        ];
        for e in &all {
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", e.code());
            assert!((400..600).contains(&e.status()));
        }
        assert_eq!(all[2].status(), 409);
        assert_eq!(all[4].retry_after_ms(), Some(900));
        assert_eq!(all[4].status(), 429);
    }
}
