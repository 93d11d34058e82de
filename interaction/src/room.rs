//! One room's interaction: commands in, events out, state from events.
//!
//! The contract (sans-IO: time comes in as arguments):
//! 1. The WebSocket/HTTP layer reads a [`Request`], knows the [`Actor`] from the token, the wall
//!    clock `now_ms` and the program time `at` ([`crate::clock::stamp`]), and calls
//!    [`RoomInteraction::handle`].
//! 2. `handle` checks the command against the state (role, ids, limits), turns it into events with
//!    the next `seq`s, **applies them** and returns them. The caller appends them to the
//!    [`crate::EventStore`] and fans them out. If the append fails, the caller drops this room and
//!    rebuilds it from the store: the store is the truth.
//! 3. A resent command, the same (participant, `nonce`) as one already handled, returns the
//!    events it produced then with [`Handled::replayed`] set: send them to that client again,
//!    but do not store or broadcast them. The room remembers the last 32 nonces of each
//!    participant, in the log itself, so this holds across restarts.
//! 4. A restart: [`RoomInteraction::restore`] applies the stored events in order.
//!
//! `at` is kept non-decreasing along the log (an `at` below the previous event's is raised to
//! it), so a client that releases events in `seq` order when `playingDate ≥ at` never holds one
//! back behind a later one. Rate limits are per participant token buckets, outside the log: a
//! restart refills them.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::actor::Actor;
use crate::chat::{Chat, ChatMessage, ChatPage};
use crate::clock::ProgramTime;
use crate::command::{Command, NONCE_MAX_CHARS, Request};
use crate::config::InteractionConfig;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};
use crate::hands::{Hand, Hands, Invitation};
use crate::polls::{PollView, Polls};
use crate::qa::{self, Qa, QuestionView};
use crate::ratelimit::RateLimiter;

/// Nonces remembered per participant.
pub const NONCES_KEPT: usize = 32;
/// Chat messages in a snapshot (older ones: history pages).
pub const SNAPSHOT_CHAT: usize = 50;

/// What [`RoomInteraction::handle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The events of the command: new ones to store and fan out, or, if `replayed`, the ones
    /// the same nonce produced before. Empty when the command changed nothing (a no-op).
    pub events: Vec<Event>,
    /// The nonce was seen: nothing new happened, store nothing.
    pub replayed: bool,
}

/// The state of a room that its events determine (rate-limit buckets are not part of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    last_seq: u64,
    last_at: ProgramTime,
    chat: Chat,
    qa: Qa,
    polls: Polls,
    hands: Hands,
    nonces: HashMap<String, VecDeque<(String, Vec<Event>)>>,
}

/// Everything a client that (re)connects needs, as `viewer` may see it. Then it asks for the
/// events after `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The last event this snapshot includes.
    pub seq: u64,
    pub pinned: Option<ChatMessage>,
    /// The latest chat messages.
    pub chat: ChatPage,
    pub questions: Vec<QuestionView>,
    pub answering: Option<QuestionView>,
    pub polls: Vec<PollView>,
    /// The queue for moderators; for an attendee, their own hand if raised.
    pub hands: Vec<Hand>,
}

/// One room's chat, Q&A, polls and hands.
#[derive(Debug, Clone)]
pub struct RoomInteraction {
    config: InteractionConfig,
    state: RoomState,
    chat_rate: RateLimiter,
    question_rate: RateLimiter,
}

impl RoomInteraction {
    /// An empty room.
    pub fn new(config: InteractionConfig) -> Self {
        Self {
            config,
            state: RoomState::default(),
            chat_rate: RateLimiter::default(),
            question_rate: RateLimiter::default(),
        }
    }

    /// A room rebuilt from its stored events, in `seq` order.
    pub fn restore(config: InteractionConfig, events: impl IntoIterator<Item = Event>) -> Result<Self> {
        let mut room = Self::new(config);
        for event in events {
            room.apply(&event)?;
        }
        Ok(room)
    }

    /// Checks `request` from `actor` at wall-clock `now_ms` and program time `at`, applies the
    /// events it makes and returns them (see the module doc).
    pub fn handle(
        &mut self,
        actor: &Actor,
        request: impl Into<Request>,
        now_ms: u64,
        at: ProgramTime,
    ) -> Result<Handled> {
        let Request { nonce, command } = request.into();
        if let Some(nonce) = &nonce {
            if nonce.is_empty() {
                return Err(InteractionError::Empty { field: "nonce" });
            }
            let len = nonce.chars().count();
            if len > NONCE_MAX_CHARS {
                return Err(InteractionError::TooLong { field: "nonce", len, max: NONCE_MAX_CHARS });
            }
            if let Some(events) = self.state.produced(&actor.participant_id, nonce) {
                return Ok(Handled { events: events.to_vec(), replayed: true });
            }
        }
        let kinds = self.decide(actor, &command, now_ms)?;
        let at = at.max(self.state.last_at);
        let mut events = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let event = Event {
                seq: self.state.last_seq + 1,
                at,
                ts: now_ms,
                actor: actor.clone(),
                nonce: nonce.clone(),
                kind,
            };
            self.apply(&event)?;
            events.push(event);
        }
        Ok(Handled { events, replayed: false })
    }

    fn decide(&mut self, actor: &Actor, command: &Command, now_ms: u64) -> Result<Vec<EventKind>> {
        let s = &self.state;
        let exempt = self.config.moderators_exempt && actor.role.is_moderator();
        match command {
            Command::ChatSend { text, visibility } => {
                let kind = Chat::send(&self.config, text, *visibility, s.last_seq + 1)?;
                if !exempt {
                    self.chat_rate.check(self.config.chat_rate, &actor.participant_id, now_ms)?;
                }
                Ok(vec![kind])
            }
            Command::ChatDelete { message } => s.chat.delete(actor, *message),
            Command::ChatPin { message } => s.chat.pin(actor, *message),
            Command::ChatUnpin => s.chat.unpin(actor),
            Command::QuestionAsk { text } => {
                let kind = s.qa.ask(&self.config, text)?;
                if !exempt {
                    self.question_rate.check(self.config.question_rate, &actor.participant_id, now_ms)?;
                }
                Ok(vec![kind])
            }
            Command::QuestionUpvote { question } => Ok(vec![s.qa.upvote(actor, question)?]),
            Command::QuestionMark { question, status } => s.qa.mark(actor, question, *status),
            Command::PollCreate { question, options, multiple, allow_change } => {
                Ok(vec![s.polls.create(&self.config, actor, question, options, *multiple, *allow_change)?])
            }
            Command::PollOpen { poll } => Ok(vec![s.polls.open(actor, poll)?]),
            Command::PollVote { poll, options } => s.polls.vote(actor, poll, options),
            Command::PollClose { poll } => Ok(vec![s.polls.close(actor, poll)?]),
            Command::HandRaise => Ok(s.hands.raise(actor)),
            Command::HandLower => Ok(s.hands.lower(actor)),
            Command::HandClear { participant } => s.hands.clear(actor, participant.as_deref()),
            Command::HandInvite { participant } => Ok(vec![s.hands.invite(actor, participant)?]),
        }
    }

    /// Applies one event of the log. Its `seq` must be above the last one; an event that names
    /// an unknown poll, question or message changes nothing (only a damaged log has those).
    pub fn apply(&mut self, event: &Event) -> Result<()> {
        let s = &mut self.state;
        if event.seq <= s.last_seq {
            return Err(InteractionError::OutOfOrder { seq: event.seq, last: s.last_seq });
        }
        s.last_seq = event.seq;
        s.last_at = s.last_at.max(event.at);
        s.chat.apply(event, self.config.chat_history_kept);
        s.qa.apply(event);
        s.polls.apply(event);
        s.hands.apply(event);
        if let Some(nonce) = &event.nonce {
            let seen = s.nonces.entry(event.actor.participant_id.clone()).or_default();
            match seen.back_mut() {
                Some((last, events)) if last == nonce => events.push(event.clone()),
                _ => {
                    seen.push_back((nonce.clone(), vec![event.clone()]));
                    if seen.len() > NONCES_KEPT {
                        seen.pop_front();
                    }
                }
            }
        }
        Ok(())
    }

    pub fn config(&self) -> &InteractionConfig {
        &self.config
    }

    /// The state the events determine (two rooms with the same log compare equal).
    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// The `seq` of the last event, 0 for an empty room.
    pub fn last_seq(&self) -> u64 {
        self.state.last_seq
    }

    /// A page of chat history that `viewer` may read (see [`Chat::page`]).
    pub fn history(&self, viewer: &Actor, before: Option<u64>, limit: usize) -> ChatPage {
        self.state.chat.page(viewer, before, limit)
    }

    pub fn pinned(&self) -> Option<&ChatMessage> {
        self.state.chat.pinned()
    }

    /// The questions `viewer` may see, by votes then time.
    pub fn questions(&self, viewer: &Actor) -> Vec<QuestionView> {
        self.state.qa.list(viewer)
    }

    /// The question being answered.
    pub fn answering(&self) -> Option<QuestionView> {
        self.state.qa.answering_view()
    }

    /// Questions still open or being answered.
    pub fn unanswered(&self) -> Vec<QuestionView> {
        self.state.qa.unanswered()
    }

    /// [`Self::unanswered`] as CSV (`text/csv; charset=utf-8`).
    pub fn unanswered_csv(&self) -> String {
        qa::to_csv(&self.unanswered())
    }

    /// The polls `viewer` may see (drafts: moderators only), with live results.
    pub fn polls(&self, viewer: &Actor) -> Vec<PollView> {
        self.state.polls.list(viewer)
    }

    /// One poll with live results.
    pub fn poll(&self, viewer: &Actor, poll: &str) -> Result<PollView> {
        self.state.polls.view(viewer, poll)
    }

    /// The raised hands, first raised first.
    pub fn hands(&self) -> &[Hand] {
        self.state.hands.queue()
    }

    pub fn invitations(&self) -> &[Invitation] {
        self.state.hands.invitations()
    }

    /// The room as `viewer` may see it now.
    pub fn snapshot(&self, viewer: &Actor) -> Snapshot {
        let hands = self
            .hands()
            .iter()
            .filter(|h| viewer.role.is_moderator() || h.participant_id == viewer.participant_id)
            .cloned()
            .collect();
        Snapshot {
            seq: self.state.last_seq,
            pinned: self.pinned().cloned(),
            chat: self.history(viewer, None, SNAPSHOT_CHAT),
            questions: self.questions(viewer),
            answering: self.answering(),
            polls: self.polls(viewer),
            hands,
        }
    }
}

impl RoomState {
    fn produced(&self, participant: &str, nonce: &str) -> Option<&[Event]> {
        self.nonces.get(participant)?.iter().find(|(n, _)| n == nonce).map(|(_, events)| events.as_slice())
    }
}
