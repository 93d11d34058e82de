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
use crate::chapters::{ChapterView, Chapters};
use crate::chat::{Chat, ChatMessage, ChatPage};
use crate::clock::ProgramTime;
use crate::command::{Command, NONCE_MAX_CHARS, Request};
use crate::config::InteractionConfig;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};
use crate::hands::{Hand, Hands, Invitation};
use crate::polls::{PollResults, PollView, Polls};
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
    chapters: Chapters,
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
    /// Every chapter so far, first first.
    pub chapters: Vec<ChapterView>,
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
            Command::ChapterStart { title } => Ok(vec![s.chapters.start(actor, title)?]),
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
        s.chapters.apply(event);
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

    /// A poll's results alone, for the throttled fan-out to everyone while it is open (see
    /// [`PollResults`]); `None` for an unknown poll or a draft. Costs O(options).
    pub fn poll_results(&self, poll: &str) -> Option<PollResults> {
        self.state.polls.results(poll)
    }

    /// The ids of the open polls, in the order created: those whose results to fan out.
    pub fn open_polls(&self) -> Vec<String> {
        self.state.polls.open_ids()
    }

    /// The raised hands, first raised first.
    pub fn hands(&self) -> &[Hand] {
        self.state.hands.queue()
    }

    pub fn invitations(&self) -> &[Invitation] {
        self.state.hands.invitations()
    }

    /// Every chapter, first first, each ending where the next begins (everyone sees them).
    pub fn chapters(&self) -> Vec<ChapterView> {
        self.state.chapters.list()
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
            chapters: self.chapters(),
        }
    }
}

impl RoomState {
    fn produced(&self, participant: &str, nonce: &str) -> Option<&[Event]> {
        self.nonces.get(participant)?.iter().find(|(n, _)| n == nonce).map(|(_, events)| events.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventStore, MemoryStore};
    use crate::testutil::*;
    use crate::{QuestionStatus, Visibility};

    fn send(text: &str) -> Command {
        Command::ChatSend { text: text.into(), visibility: Visibility::Everyone }
    }

    #[test]
    fn seq_counts_from_one_and_at_never_goes_back() {
        let mut room = room();
        let a = attendee("a");
        let first = room.exec(&a, send("one"), T0, ProgramTime(5_000)).expect("sent");
        let second = room.exec(&a, send("two"), T0 + 10, ProgramTime(4_000)).expect("sent");
        let third = room.exec(&a, send("three"), T0 + 20, ProgramTime(6_000)).expect("sent");
        assert_eq!([first[0].seq, second[0].seq, third[0].seq], [1, 2, 3]);
        assert_eq!(
            [first[0].at, second[0].at, third[0].at],
            [ProgramTime(5_000), ProgramTime(5_000), ProgramTime(6_000)]
        );
        assert_eq!(second[0].ts, T0 + 10);
    }

    #[test]
    fn the_same_nonce_twice_returns_the_first_events_and_stores_nothing() {
        let mut room = Logged::default();
        let a = attendee("a");
        let request = Request::with_nonce(send("hello"), "n-1");
        let first = room.run(&a, request.clone(), T0, AT0).expect("sent");
        assert!(!first.replayed);
        let again = room.run(&a, request.clone(), T0 + 5_000, AT0).expect("resent");
        assert!(again.replayed);
        assert_eq!(again.events, first.events);
        assert_eq!(room.room.last_seq(), 1);
        assert_eq!(room.log.len(), 1);
        assert_eq!(room.room.history(&a, None, 10).messages.len(), 1);
        // Another participant's nonce is their own.
        let other = room.run(&attendee("b"), request.clone(), T0, AT0).expect("sent");
        assert!(!other.replayed);
        // A command of several events replays all of them.
        let h = host();
        room.run(&a, Command::QuestionAsk { text: "one".into() }, T0, AT0).expect("asked");
        room.run(&a, Command::QuestionAsk { text: "two".into() }, T0, AT0).expect("asked");
        let answer = |q: &str| Command::QuestionMark { question: q.into(), status: QuestionStatus::Answering };
        room.run(&h, answer("q1"), T0, AT0).expect("marked");
        let mark = Request::with_nonce(answer("q2"), "m-1");
        let marked = room.run(&h, mark.clone(), T0, AT0).expect("marked");
        assert_eq!(marked.events.len(), 2);
        // The nonces live in the log: a room restored from the store still knows them.
        let mut store = MemoryStore::default();
        store.append("r", &room.log).expect("append");
        let log = store.load("r").expect("load");
        let mut restored = RoomInteraction::restore(InteractionConfig::default(), log).expect("restore");
        let again = restored.handle(&h, mark, T0, AT0).expect("resent");
        assert_eq!(again, Handled { events: marked.events, replayed: true });
        let again = restored.handle(&a, request, T0, AT0).expect("resent");
        assert_eq!(again.events, first.events);
        assert_eq!(restored.last_seq(), room.room.last_seq());
    }

    #[test]
    fn bad_nonces_are_refused() {
        let mut room = room();
        let long = Request::with_nonce(Command::HandRaise, "n".repeat(65));
        assert_eq!(room.handle(&attendee("a"), long, T0, AT0).map_err(|e| e.code()), Err("too_long"));
        let empty = Request::with_nonce(Command::HandRaise, "");
        assert_eq!(room.handle(&attendee("a"), empty, T0, AT0).map_err(|e| e.code()), Err("empty"));
    }

    #[test]
    fn restore_refuses_a_log_out_of_order() {
        let mut room = room();
        let mut events = room.exec(&host(), send("a"), T0, AT0).expect("sent");
        events.extend(room.exec(&host(), send("b"), T0, AT0).expect("sent"));
        events.swap(0, 1);
        let e = RoomInteraction::restore(InteractionConfig::default(), events);
        assert_eq!(e.map(|_| ()), Err(InteractionError::OutOfOrder { seq: 1, last: 2 }));
    }

    #[test]
    fn attendees_may_not_moderate() {
        let mut room = room();
        let (a, b) = (attendee("a"), attendee("b"));
        room.exec(&b, send("hi"), T0, AT0).expect("sent");
        room.exec(&b, Command::QuestionAsk { text: "why?".into() }, T0, AT0).expect("asked");
        room.exec(
            &host(),
            Command::PollCreate {
                question: "?".into(),
                options: vec!["x".into(), "y".into()],
                multiple: false,
                allow_change: true,
            },
            T0,
            AT0,
        )
        .expect("created");
        room.exec(&b, Command::HandRaise, T0, AT0).expect("raised");
        let moderation = [
            Command::ChatDelete { message: 1 },
            Command::ChatPin { message: 1 },
            Command::ChatUnpin,
            Command::QuestionMark { question: "q1".into(), status: QuestionStatus::Answering },
            Command::QuestionMark { question: "q1".into(), status: QuestionStatus::Dismissed },
            Command::PollOpen { poll: "p1".into() },
            Command::PollClose { poll: "p1".into() },
            Command::HandClear { participant: Some("b".into()) },
            Command::HandClear { participant: None },
            Command::HandInvite { participant: "b".into() },
        ];
        let before = room.state().clone();
        for command in moderation {
            let name = command.type_name();
            let e = room.exec(&a, command, T0, AT0).expect_err(name);
            assert_eq!((e.code(), e.status()), ("not_allowed", 403), "{name}");
        }
        assert_eq!(room.state(), &before);
    }
}
