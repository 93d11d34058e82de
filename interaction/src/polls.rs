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

/// A poll's results alone: what the server fans out, throttled, to everyone while a poll is open
/// (attendees never receive individual `poll_voted` events; a vote is private).
/// ```json
/// {"poll":"p1","counts":[3,1,0],"voters":4,"state":"open"}
/// ```
/// `counts` are per option, in the poll's option order; on a multiple-choice poll they can add
/// up to more than `voters`. After `poll_closed` they are final and equal that event's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResults {
    pub poll: String,
    pub counts: Vec<u64>,
    pub voters: u64,
    pub state: PollState,
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

    fn results(&self) -> PollResults {
        PollResults {
            poll: self.id.clone(),
            counts: self.counts.iter().map(|&c| u64::from(c)).collect(),
            voters: self.votes.len() as u64,
            state: self.state,
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

    /// The results of an open or closed poll, in O(options): no per-voter work, no viewer.
    /// `None` for an unknown poll and for a draft (drafts are for moderators only, so there is
    /// nothing to fan out to everyone).
    pub fn results(&self, poll: &str) -> Option<PollResults> {
        let p = self.get(poll).ok()?;
        (p.state != PollState::Draft).then(|| p.results())
    }

    /// The ids of the open polls, in the order created.
    pub fn open_ids(&self) -> Vec<String> {
        self.polls.iter().filter(|p| p.state == PollState::Open).map(|p| p.id.clone()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{Command, Role, RoomInteraction};

    fn create(options: &[&str], multiple: bool, allow_change: bool) -> Command {
        Command::PollCreate {
            question: "Which one?".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            multiple,
            allow_change,
        }
    }

    fn vote(poll: &str, options: &[usize]) -> Command {
        Command::PollVote { poll: poll.into(), options: options.to_vec() }
    }

    /// A room with poll p1 (options a, b, c) created and opened.
    fn open_poll(multiple: bool, allow_change: bool) -> RoomInteraction {
        let mut room = room();
        room.exec(&host(), create(&["a", "b", "c"], multiple, allow_change), T0, AT0).expect("created");
        room.exec(&host(), Command::PollOpen { poll: "p1".into() }, T0, AT0).expect("opened");
        room
    }

    fn counts(room: &RoomInteraction) -> (Vec<u32>, u32) {
        let view = room.poll(&host(), "p1").expect("p1");
        (view.options.iter().map(|o| o.votes).collect(), view.voters)
    }

    #[test]
    fn creation_checks_options() {
        let mut room = room();
        let h = host();
        let e = room.exec(&h, create(&["only"], false, true), T0, AT0);
        assert_eq!(e, Err(InteractionError::InvalidOptionCount { count: 1, min: 2, max: 10 }));
        let eleven: Vec<String> = (0..11).map(|i| format!("o{i}")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        let e = room.exec(&h, create(&eleven, false, true), T0, AT0);
        assert_eq!(e.map_err(|e| e.code()), Err("invalid_option_count"));
        let e = room.exec(&h, create(&["Yes", " yes "], false, true), T0, AT0);
        assert_eq!(e, Err(InteractionError::DuplicateOption("yes".into())));
        let e = room.exec(&h, create(&["a", "  "], false, true), T0, AT0);
        assert_eq!(e, Err(InteractionError::Empty { field: "option" }));
        let e = room.exec(&h, create(&["a", &"x".repeat(101)], false, true), T0, AT0);
        assert_eq!(e.map_err(|e| e.code()), Err("too_long"));
        let e = room.exec(&attendee("a"), create(&["a", "b"], false, true), T0, AT0);
        assert_eq!(e, Err(InteractionError::NotAllowed { action: "poll_create" }));
        assert_eq!(room.last_seq(), 0);
        let ten: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
        let events = room.exec(&h, create(&ten, false, true), T0, AT0).expect("ten options");
        assert!(matches!(&events[0].kind, EventKind::PollCreated { id, .. } if id == "p1"));
    }

    #[test]
    fn draft_open_closed_and_who_may_move_it() {
        let mut room = room();
        let (h, a) = (host(), attendee("a"));
        room.exec(&h, create(&["a", "b"], false, true), T0, AT0).expect("created");
        assert!(room.polls(&a).is_empty(), "drafts are for moderators");
        assert_eq!(room.poll(&a, "p1"), Err(InteractionError::UnknownPoll("p1".into())));
        assert_eq!(room.exec(&a, vote("p1", &[0]), T0, AT0), Err(InteractionError::PollNotOpen("p1".into())));
        assert_eq!(
            room.exec(&h, Command::PollClose { poll: "p1".into() }, T0, AT0),
            Err(InteractionError::PollNotOpen("p1".into()))
        );
        let open = Command::PollOpen { poll: "p1".into() };
        assert_eq!(room.exec(&a, open.clone(), T0, AT0), Err(InteractionError::NotAllowed { action: "poll_open" }));
        let opened = room.exec(&presenter(), open.clone(), T0, AT0).expect("opened");
        assert!(opened[0].visible_to(Role::Attendee), "poll_opened carries the poll to everyone");
        assert_eq!(room.exec(&h, open.clone(), T0, AT0), Err(InteractionError::PollAlreadyOpen("p1".into())));
        assert_eq!(room.polls(&a).len(), 1);
        let close = Command::PollClose { poll: "p1".into() };
        assert_eq!(room.exec(&a, close.clone(), T0, AT0), Err(InteractionError::NotAllowed { action: "poll_close" }));
        room.exec(&h, close.clone(), T0, AT0).expect("closed");
        assert_eq!(room.exec(&h, close, T0, AT0), Err(InteractionError::PollClosed("p1".into())));
        assert_eq!(room.exec(&h, open, T0, AT0), Err(InteractionError::PollClosed("p1".into())));
    }

    #[test]
    fn unknown_poll_ids() {
        let mut room = open_poll(false, true);
        for id in ["p2", "p0", "x", "", "p-1", "p99999999999999999999999"] {
            assert_eq!(
                room.exec(&attendee("a"), vote(id, &[0]), T0, AT0),
                Err(InteractionError::UnknownPoll(id.into()))
            );
        }
    }

    #[test]
    fn a_single_choice_poll_takes_exactly_one_valid_option() {
        let mut room = open_poll(false, true);
        let a = attendee("a");
        for bad in [&[][..], &[0, 1], &[3], &[usize::MAX]] {
            let e = room.exec(&a, vote("p1", bad), T0, AT0);
            assert_eq!(e.map_err(|e| e.code()), Err("invalid_choice"), "{bad:?}");
        }
        room.exec(&a, vote("p1", &[2]), T0, AT0).expect("voted");
        assert_eq!(counts(&room), (vec![0, 0, 1], 1));
    }

    #[test]
    fn a_multiple_choice_poll_takes_distinct_options() {
        let mut room = open_poll(true, true);
        let a = attendee("a");
        let e = room.exec(&a, vote("p1", &[1, 1]), T0, AT0);
        assert_eq!(e, Err(InteractionError::InvalidChoice("the same option twice")));
        let events = room.exec(&a, vote("p1", &[2, 0]), T0, AT0).expect("voted");
        assert_eq!(events[0].kind, EventKind::PollVoted { poll: "p1".into(), options: vec![0, 2] });
        assert!(!events[0].visible_to(Role::Attendee), "a vote is private");
        assert!(events[0].visible_to_participant(Role::Attendee, "a"));
        room.exec(&attendee("b"), vote("p1", &[0]), T0, AT0).expect("voted");
        assert_eq!(counts(&room), (vec![2, 0, 1], 2));
    }

    #[test]
    fn a_changed_vote_moves_the_counts_and_the_same_vote_is_a_no_op() {
        let mut room = open_poll(false, true);
        let a = attendee("a");
        room.exec(&a, vote("p1", &[0]), T0, AT0).expect("voted");
        room.exec(&a, vote("p1", &[1]), T0, AT0).expect("changed");
        assert_eq!(counts(&room), (vec![0, 1, 0], 1));
        assert!(room.exec(&a, vote("p1", &[1]), T0, AT0).expect("same").is_empty());
        assert_eq!(room.poll(&a, "p1").map(|p| p.my_vote), Ok(Some(vec![1])));
    }

    #[test]
    fn without_allow_change_a_second_vote_is_already_voted() {
        let mut room = open_poll(false, false);
        let a = attendee("a");
        room.exec(&a, vote("p1", &[0]), T0, AT0).expect("voted");
        for again in [&[1][..], &[0]] {
            assert_eq!(room.exec(&a, vote("p1", again), T0, AT0), Err(InteractionError::AlreadyVoted("p1".into())));
        }
        assert_eq!(counts(&room), (vec![1, 0, 0], 1));
    }

    #[test]
    fn two_votes_at_once_from_one_participant_count_once() {
        // The room handles commands one at a time, so "at once" is two in a row, same instant.
        for allow_change in [true, false] {
            let mut room = open_poll(false, allow_change);
            let a = attendee("a");
            let first = room.exec(&a, vote("p1", &[0]), T0, AT0);
            let second = room.exec(&a, vote("p1", &[1]), T0, AT0);
            assert!(first.is_ok());
            assert_eq!(second.is_ok(), allow_change);
            let (counts, voters) = counts(&room);
            assert_eq!((counts.iter().sum::<u32>(), voters), (1, 1));
        }
    }

    #[test]
    fn closing_while_votes_arrive_refuses_the_late_ones_and_freezes_results() {
        let mut room = open_poll(false, true);
        let mut closed = None;
        for i in 0..100usize {
            let voter = attendee(&format!("v{i}"));
            let result = room.exec(&voter, vote("p1", &[i % 3]), T0 + i as u64, AT0);
            if i < 60 {
                assert!(result.is_ok());
            } else {
                assert_eq!(result, Err(InteractionError::PollClosed("p1".into())));
            }
            if i == 59 {
                let events = room.exec(&host(), Command::PollClose { poll: "p1".into() }, T0, AT0).expect("closed");
                closed = Some(events[0].kind.clone());
            }
        }
        assert_eq!(closed, Some(EventKind::PollClosed { poll: "p1".into(), counts: vec![20, 20, 20], voters: 60 }));
        // A voter who voted before the close cannot change it afterwards either.
        let e = room.exec(&attendee("v0"), vote("p1", &[1]), T0, AT0);
        assert_eq!(e, Err(InteractionError::PollClosed("p1".into())));
        let view = room.poll(&attendee("v0"), "p1").expect("p1");
        assert_eq!((view.state, view.voters), (PollState::Closed, 60));
        assert_eq!(view.options.iter().map(|o| o.votes).collect::<Vec<_>>(), [20, 20, 20]);
        assert_eq!(view.closed_at, Some(AT0));
    }

    #[test]
    fn results_for_the_fan_out_follow_the_votes_and_freeze_at_the_close() {
        let mut room = open_poll(true, true);
        room.exec(&host(), create(&["x", "y"], false, true), T0, AT0).expect("created p2, a draft");
        assert_eq!(room.open_polls(), ["p1"]);
        assert_eq!(room.poll_results("p2"), None, "a draft has nothing to fan out");
        assert_eq!(room.poll_results("p9"), None);
        assert_eq!(room.poll_results("nonsense"), None);
        room.exec(&attendee("a"), vote("p1", &[0, 2]), T0, AT0).expect("voted");
        room.exec(&attendee("b"), vote("p1", &[0]), T0, AT0).expect("voted");
        let live = room.poll_results("p1").expect("open");
        assert_eq!(live, PollResults { poll: "p1".into(), counts: vec![2, 0, 1], voters: 2, state: PollState::Open });
        assert_eq!(
            serde_json::to_string(&live).expect("serializes"),
            r#"{"poll":"p1","counts":[2,0,1],"voters":2,"state":"open"}"#
        );
        // The same numbers every viewer's PollView shows.
        let view = room.poll(&attendee("z"), "p1").expect("p1");
        let view_counts: Vec<u64> = view.options.iter().map(|o| u64::from(o.votes)).collect();
        assert_eq!((view_counts, u64::from(view.voters)), (live.counts.clone(), live.voters));

        room.exec(&host(), Command::PollOpen { poll: "p2".into() }, T0, AT0).expect("opened");
        assert_eq!(room.open_polls(), ["p1", "p2"]);
        let closed = room.exec(&host(), Command::PollClose { poll: "p1".into() }, T0, AT0).expect("closed");
        assert_eq!(room.open_polls(), ["p2"]);
        let EventKind::PollClosed { counts, voters, .. } = &closed[0].kind else { panic!("{closed:?}") };
        let fin = room.poll_results("p1").expect("closed results stay");
        assert_eq!(fin.state, PollState::Closed);
        assert_eq!(fin.counts, counts.iter().map(|&c| u64::from(c)).collect::<Vec<_>>());
        assert_eq!(fin.voters, u64::from(*voters));
        assert!(room.exec(&attendee("c"), vote("p1", &[1]), T0, AT0).is_err());
        assert_eq!(room.poll_results("p1"), Some(fin));
    }
}
