//! Polls: draft → open → closed, votes and live results.
//!
//! Rules: a moderator creates a poll (a draft, seen by moderators only) with a question and 2 to
//! 10 options, each trimmed, non-empty and distinct (case-insensitively); `multiple` (default
//! false) allows several options per vote; `allow_change` (default true) lets a voter change
//! their vote until the poll closes, otherwise a second vote is `already_voted`. A moderator opens
//! it (everyone sees it from then on) and closes it; a closed poll takes no votes (`poll_closed`)
//! and its results are final. A vote is option indexes from 0: exactly one on a single-choice
//! poll, one or more distinct ones on a multiple-choice poll. Results count votes per option and
//! voters; everybody sees live results of open polls. Poll ids are `p1, p2, …`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::clock::ProgramTime;
use crate::config::InteractionConfig;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};
use crate::text;

/// Fewest options of a poll.
pub const OPTIONS_MIN: usize = 2;
/// Most options of a poll.
pub const OPTIONS_MAX: usize = 10;

/// Where a poll stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollState {
    Draft,
    Open,
    Closed,
}

/// One option with its live count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollOption {
    pub text: String,
    pub votes: u32,
}

/// A poll with its results as a participant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollView {
    pub id: String,
    pub question: String,
    pub options: Vec<PollOption>,
    pub multiple: bool,
    pub allow_change: bool,
    pub state: PollState,
    /// Participants who voted.
    pub voters: u32,
    /// Program time it opened and closed at, once it did.
    pub opened_at: Option<ProgramTime>,
    pub closed_at: Option<ProgramTime>,
    /// The viewer's own vote.
    pub my_vote: Option<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Poll {
    id: String,
    question: String,
    options: Vec<String>,
    multiple: bool,
    allow_change: bool,
    state: PollState,
    opened_at: Option<ProgramTime>,
    closed_at: Option<ProgramTime>,
    votes: BTreeMap<String, Vec<usize>>,
    counts: Vec<u32>,
}

impl Poll {
    fn view(&self, viewer: &str) -> PollView {
        PollView {
            id: self.id.clone(),
            question: self.question.clone(),
            options: self
                .options
                .iter()
                .zip(&self.counts)
                .map(|(text, votes)| PollOption { text: text.clone(), votes: *votes })
                .collect(),
            multiple: self.multiple,
            allow_change: self.allow_change,
            state: self.state,
            voters: u32::try_from(self.votes.len()).unwrap_or(u32::MAX),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            my_vote: self.votes.get(viewer).cloned(),
        }
    }

    fn count(&mut self, choice: &[usize], add: bool) {
        for &i in choice {
            if let Some(c) = self.counts.get_mut(i) {
                *c = if add { c.saturating_add(1) } else { c.saturating_sub(1) };
            }
        }
    }

    /// The vote, sorted, if this poll can take it.
    fn check_choice(&self, options: &[usize]) -> Result<Vec<usize>> {
        if options.is_empty() {
            return Err(InteractionError::InvalidChoice("no option chosen"));
        }
        if !self.multiple && options.len() > 1 {
            return Err(InteractionError::InvalidChoice("a single-choice poll takes one option"));
        }
        if options.iter().any(|&i| i >= self.options.len()) {
            return Err(InteractionError::InvalidChoice("no such option"));
        }
        let distinct: BTreeSet<usize> = options.iter().copied().collect();
        if distinct.len() != options.len() {
            return Err(InteractionError::InvalidChoice("the same option twice"));
        }
        Ok(distinct.into_iter().collect())
    }
}

/// A room's polls, in the order created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polls {
    polls: Vec<Poll>,
}

impl Polls {
    pub(crate) fn create(
        &self,
        config: &InteractionConfig,
        actor: &Actor,
        question: &str,
        options: &[String],
        multiple: bool,
        allow_change: bool,
    ) -> Result<EventKind> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "poll_create" });
        }
        let question = text::clean("question", question, config.poll_question_max_chars)?;
        if !(OPTIONS_MIN..=OPTIONS_MAX).contains(&options.len()) {
            return Err(InteractionError::InvalidOptionCount {
                count: options.len(),
                min: OPTIONS_MIN,
                max: OPTIONS_MAX,
            });
        }
        let mut seen = BTreeSet::new();
        let mut cleaned = Vec::with_capacity(options.len());
        for option in options {
            let option = text::clean("option", option, config.poll_option_max_chars)?;
            if !seen.insert(option.to_lowercase()) {
                return Err(InteractionError::DuplicateOption(option));
            }
            cleaned.push(option);
        }
        let id = format!("p{}", self.polls.len() + 1);
        Ok(EventKind::PollCreated { id, question, options: cleaned, multiple, allow_change })
    }

    pub(crate) fn open(&self, actor: &Actor, poll: &str) -> Result<EventKind> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "poll_open" });
        }
        let p = self.get(poll)?;
        match p.state {
            PollState::Draft => Ok(EventKind::PollOpened {
                id: p.id.clone(),
                question: p.question.clone(),
                options: p.options.clone(),
                multiple: p.multiple,
                allow_change: p.allow_change,
            }),
            PollState::Open => Err(InteractionError::PollAlreadyOpen(p.id.clone())),
            PollState::Closed => Err(InteractionError::PollClosed(p.id.clone())),
        }
    }

    pub(crate) fn vote(&self, actor: &Actor, poll: &str, options: &[usize]) -> Result<Vec<EventKind>> {
        let p = self.get(poll)?;
        match p.state {
            PollState::Draft => return Err(InteractionError::PollNotOpen(p.id.clone())),
            PollState::Closed => return Err(InteractionError::PollClosed(p.id.clone())),
            PollState::Open => {}
        }
        let choice = p.check_choice(options)?;
        match p.votes.get(&actor.participant_id) {
            Some(_) if !p.allow_change => Err(InteractionError::AlreadyVoted(p.id.clone())),
            Some(previous) if *previous == choice => Ok(Vec::new()),
            _ => Ok(vec![EventKind::PollVoted { poll: p.id.clone(), options: choice }]),
        }
    }

    pub(crate) fn close(&self, actor: &Actor, poll: &str) -> Result<EventKind> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "poll_close" });
        }
        let p = self.get(poll)?;
        match p.state {
            PollState::Draft => Err(InteractionError::PollNotOpen(p.id.clone())),
            PollState::Closed => Err(InteractionError::PollClosed(p.id.clone())),
            PollState::Open => Ok(EventKind::PollClosed {
                poll: p.id.clone(),
                counts: p.counts.clone(),
                voters: u32::try_from(p.votes.len()).unwrap_or(u32::MAX),
            }),
        }
    }

    pub(crate) fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::PollCreated { id, question, options, multiple, allow_change } => self.polls.push(Poll {
                id: id.clone(),
                question: question.clone(),
                options: options.clone(),
                multiple: *multiple,
                allow_change: *allow_change,
                state: PollState::Draft,
                opened_at: None,
                closed_at: None,
                votes: BTreeMap::new(),
                counts: vec![0; options.len()],
            }),
            EventKind::PollOpened { id, .. } => {
                if let Some(p) = self.get_mut(id) {
                    p.state = PollState::Open;
                    p.opened_at = Some(event.at);
                }
            }
            EventKind::PollVoted { poll, options } => {
                if let Some(p) = self.get_mut(poll) {
                    if let Some(previous) = p.votes.insert(event.actor.participant_id.clone(), options.clone()) {
                        p.count(&previous, false);
                    }
                    p.count(options, true);
                }
            }
            EventKind::PollClosed { poll, .. } => {
                if let Some(p) = self.get_mut(poll) {
                    p.state = PollState::Closed;
                    p.closed_at = Some(event.at);
                }
            }
            _ => {}
        }
    }

    /// One poll with its results; drafts only for moderators.
    pub fn view(&self, viewer: &Actor, poll: &str) -> Result<PollView> {
        let p = self.get(poll)?;
        if p.state == PollState::Draft && !viewer.role.is_moderator() {
            return Err(InteractionError::UnknownPoll(poll.into()));
        }
        Ok(p.view(&viewer.participant_id))
    }

    /// The polls `viewer` may see, in the order created.
    pub fn list(&self, viewer: &Actor) -> Vec<PollView> {
        self.polls
            .iter()
            .filter(|p| p.state != PollState::Draft || viewer.role.is_moderator())
            .map(|p| p.view(&viewer.participant_id))
            .collect()
    }

    fn index(id: &str) -> Option<usize> {
        id.strip_prefix('p')?.parse::<usize>().ok()?.checked_sub(1)
    }

    fn get(&self, id: &str) -> Result<&Poll> {
        Self::index(id).and_then(|i| self.polls.get(i)).ok_or_else(|| InteractionError::UnknownPoll(id.into()))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Poll> {
        Self::index(id).and_then(|i| self.polls.get_mut(i))
    }
}
