//! Q&A: questions, upvotes, moderation and the export of what is left unanswered.
//!
//! Rules: a question is trimmed text of 1 to `question_max_chars` characters, with id `q1, q2, …`
//! in the order asked. Each participant has at most one vote per question; `question_upvote`
//! toggles it. Lists are sorted by votes (most first), then by `at` (oldest first). Moderators mark
//! a question `open`, `answering`, `answered` or `dismissed`, from any status to any other; at most
//! one question is `answering`: marking another one puts the previous one back to `open` (two
//! events). Attendees do not see dismissed questions in lists (the events still reach them).

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::clock::ProgramTime;
use crate::config::InteractionConfig;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};
use crate::text;

/// Where a question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionStatus {
    Open,
    Answering,
    Answered,
    Dismissed,
}

impl QuestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Answering => "answering",
            Self::Answered => "answered",
            Self::Dismissed => "dismissed",
        }
    }
}

/// A question as a participant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionView {
    pub id: String,
    pub at: ProgramTime,
    pub ts: u64,
    pub author: Actor,
    pub text: String,
    pub status: QuestionStatus,
    pub votes: u32,
    /// Whether the viewer has upvoted it.
    pub voted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Question {
    id: String,
    at: ProgramTime,
    ts: u64,
    author: Actor,
    text: String,
    status: QuestionStatus,
    voters: std::collections::BTreeSet<String>,
}

impl Question {
    fn view(&self, viewer: &str) -> QuestionView {
        QuestionView {
            id: self.id.clone(),
            at: self.at,
            ts: self.ts,
            author: self.author.clone(),
            text: self.text.clone(),
            status: self.status,
            votes: u32::try_from(self.voters.len()).unwrap_or(u32::MAX),
            voted: self.voters.contains(viewer),
        }
    }
}

/// A room's questions, in the order asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qa {
    questions: Vec<Question>,
}

impl Qa {
    pub(crate) fn ask(&self, config: &InteractionConfig, text: &str) -> Result<EventKind> {
        let text = text::clean("text", text, config.question_max_chars)?;
        Ok(EventKind::QuestionAsked { id: format!("q{}", self.questions.len() + 1), text })
    }

    pub(crate) fn upvote(&self, actor: &Actor, question: &str) -> Result<EventKind> {
        let q = self.get(question)?;
        let had = q.voters.contains(&actor.participant_id);
        let votes = q.voters.len() + usize::from(!had) - usize::from(had);
        let votes = u32::try_from(votes).unwrap_or(u32::MAX);
        Ok(EventKind::QuestionVoted { question: q.id.clone(), voted: !had, votes })
    }

    pub(crate) fn mark(&self, actor: &Actor, question: &str, status: QuestionStatus) -> Result<Vec<EventKind>> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "question_mark" });
        }
        let q = self.get(question)?;
        if q.status == status {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        if status == QuestionStatus::Answering {
            events.extend(
                self.answering()
                    .map(|prev| EventKind::QuestionStatus { question: prev.id.clone(), status: QuestionStatus::Open }),
            );
        }
        events.push(EventKind::QuestionStatus { question: q.id.clone(), status });
        Ok(events)
    }

    pub(crate) fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::QuestionAsked { id, text } => self.questions.push(Question {
                id: id.clone(),
                at: event.at,
                ts: event.ts,
                author: event.actor.clone(),
                text: text.clone(),
                status: QuestionStatus::Open,
                voters: Default::default(),
            }),
            EventKind::QuestionVoted { question, voted, .. } => {
                if let Some(q) = self.get_mut(question) {
                    let voter = event.actor.participant_id.clone();
                    if *voted {
                        q.voters.insert(voter);
                    } else {
                        q.voters.remove(&voter);
                    }
                }
            }
            EventKind::QuestionStatus { question, status } => {
                if let Some(q) = self.get_mut(question) {
                    q.status = *status;
                }
            }
            _ => {}
        }
    }

    fn answering(&self) -> Option<&Question> {
        self.questions.iter().find(|q| q.status == QuestionStatus::Answering)
    }

    /// The question being answered, if any.
    pub fn answering_view(&self) -> Option<QuestionView> {
        self.answering().map(|q| q.view(""))
    }

    /// The questions `viewer` may see, by votes then time.
    pub fn list(&self, viewer: &Actor) -> Vec<QuestionView> {
        let shown = |q: &&Question| viewer.role.is_moderator() || q.status != QuestionStatus::Dismissed;
        sorted(self.questions.iter().filter(shown).map(|q| q.view(&viewer.participant_id)).collect())
    }

    /// The questions still `open` or `answering`, by votes then time (for the host after the
    /// webinar).
    pub fn unanswered(&self) -> Vec<QuestionView> {
        let left = |q: &&Question| matches!(q.status, QuestionStatus::Open | QuestionStatus::Answering);
        sorted(self.questions.iter().filter(left).map(|q| q.view("")).collect())
    }

    fn index(id: &str) -> Option<usize> {
        id.strip_prefix('q')?.parse::<usize>().ok()?.checked_sub(1)
    }

    fn get(&self, id: &str) -> Result<&Question> {
        Self::index(id).and_then(|i| self.questions.get(i)).ok_or_else(|| InteractionError::UnknownQuestion(id.into()))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Question> {
        Self::index(id).and_then(|i| self.questions.get_mut(i))
    }
}

fn sorted(mut list: Vec<QuestionView>) -> Vec<QuestionView> {
    // Stable: equal votes and `at` keep the order asked.
    list.sort_by(|a, b| b.votes.cmp(&a.votes).then(a.at.cmp(&b.at)));
    list
}

/// Questions as CSV (RFC 4180: CRLF line ends, fields with `,` `"` CR or LF quoted, quotes
/// doubled). A text that starts with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so that a
/// spreadsheet does not run it as a formula (OWASP "CSV injection").
pub fn to_csv(questions: &[QuestionView]) -> String {
    let mut out = String::from("id,at,ts,author,votes,status,text\r\n");
    for q in questions {
        let row = [
            q.id.clone(),
            q.at.as_millis().to_string(),
            q.ts.to_string(),
            csv_field(&q.author.name),
            q.votes.to_string(),
            q.status.as_str().to_owned(),
            csv_field(&q.text),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field, defused and quoted as [`to_csv`] says (other exports use it too).
pub fn csv_field(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if defused.contains([',', '"', '\r', '\n']) { format!("\"{}\"", defused.replace('"', "\"\"")) } else { defused }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{Command, Event};

    fn ask(room: &mut crate::RoomInteraction, who: &Actor, text: &str, at: u64) -> String {
        let events = room.exec(who, Command::QuestionAsk { text: text.into() }, T0, ProgramTime(at)).expect("asked");
        match &events[0].kind {
            EventKind::QuestionAsked { id, .. } => id.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn upvote(room: &mut crate::RoomInteraction, who: &Actor, q: &str) -> Vec<Event> {
        room.exec(who, Command::QuestionUpvote { question: q.into() }, T0, AT0).expect("upvoted")
    }

    fn mark(q: &str, status: QuestionStatus) -> Command {
        Command::QuestionMark { question: q.into(), status }
    }

    #[test]
    fn upvote_toggles_once_per_participant() {
        let mut room = room();
        let q = ask(&mut room, &attendee("a"), "Why?", 1_000);
        let b = attendee("b");
        let on = upvote(&mut room, &b, &q);
        assert_eq!(on[0].kind, EventKind::QuestionVoted { question: q.clone(), voted: true, votes: 1 });
        upvote(&mut room, &attendee("c"), &q);
        assert_eq!(room.questions(&b)[0].votes, 2);
        assert!(room.questions(&b)[0].voted);
        let off = upvote(&mut room, &b, &q);
        assert_eq!(off[0].kind, EventKind::QuestionVoted { question: q.clone(), voted: false, votes: 1 });
        assert!(!room.questions(&b)[0].voted);
        upvote(&mut room, &b, &q);
        assert_eq!(room.questions(&b)[0].votes, 2);
        let e = room.exec(&b, Command::QuestionUpvote { question: "q9".into() }, T0, AT0);
        assert_eq!(e, Err(InteractionError::UnknownQuestion("q9".into())));
        let e = room.exec(&b, Command::QuestionUpvote { question: "x".into() }, T0, AT0);
        assert_eq!(e.map_err(|e| e.code()), Err("unknown_question"));
    }

    #[test]
    fn list_is_by_votes_then_time() {
        let mut room = room();
        let h = host();
        let q1 = ask(&mut room, &h, "first", 1_000);
        let q2 = ask(&mut room, &h, "second", 2_000);
        let q3 = ask(&mut room, &h, "third", 3_000);
        upvote(&mut room, &attendee("a"), &q3);
        let ids: Vec<String> = room.questions(&h).into_iter().map(|q| q.id).collect();
        assert_eq!(ids, [q3.clone(), q1, q2]);
    }

    #[test]
    fn one_question_answering_at_a_time() {
        let mut room = room();
        let h = host();
        let q1 = ask(&mut room, &attendee("a"), "one", 1_000);
        let q2 = ask(&mut room, &attendee("b"), "two", 2_000);
        room.exec(&h, mark(&q1, QuestionStatus::Answering), T0, AT0).expect("marked");
        let events = room.exec(&h, mark(&q2, QuestionStatus::Answering), T0, AT0).expect("marked");
        let kinds: Vec<EventKind> = events.into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::QuestionStatus { question: q1.clone(), status: QuestionStatus::Open },
                EventKind::QuestionStatus { question: q2.clone(), status: QuestionStatus::Answering },
            ]
        );
        assert!(room.exec(&h, mark(&q2, QuestionStatus::Answering), T0, AT0).expect("same").is_empty());
        room.exec(&h, mark(&q2, QuestionStatus::Answered), T0, AT0).expect("answered");
        room.exec(&h, mark(&q1, QuestionStatus::Dismissed), T0, AT0).expect("dismissed");
        let seen: Vec<(String, QuestionStatus)> =
            room.questions(&attendee("a")).into_iter().map(|q| (q.id, q.status)).collect();
        assert_eq!(seen, [(q2, QuestionStatus::Answered)], "attendees do not list dismissed questions");
        assert_eq!(room.questions(&h).len(), 2);
    }

    #[test]
    fn attendees_cannot_mark() {
        let mut room = room();
        let a = attendee("a");
        let q = ask(&mut room, &a, "mine", 1_000);
        for status in [QuestionStatus::Answering, QuestionStatus::Answered, QuestionStatus::Dismissed] {
            let e = room.exec(&a, mark(&q, status), T0, AT0);
            assert_eq!(e, Err(InteractionError::NotAllowed { action: "question_mark" }));
        }
    }

    #[test]
    fn export_lists_unanswered_with_csv_quoting() {
        let mut room = room();
        let h = host();
        let q1 = ask(&mut room, &Actor::new("a", "Doe, Jane", crate::Role::Attendee), "Say \"hi\"?\nPlease", 1_000);
        let q2 = ask(&mut room, &attendee("b"), "=HYPERLINK(\"x\")", 2_000);
        let q3 = ask(&mut room, &attendee("c"), "done", 3_000);
        room.exec(&h, mark(&q3, QuestionStatus::Answered), T0, AT0).expect("answered");
        let left: Vec<String> = room.unanswered().into_iter().map(|q| q.id).collect();
        assert_eq!(left, [q1, q2]);
        let csv = room.unanswered_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "id,at,ts,author,votes,status,text");
        assert_eq!(lines[1], format!("q1,1000,{T0},\"Doe, Jane\",0,open,\"Say \"\"hi\"\"?\nPlease\""));
        assert_eq!(lines[2], format!("q2,2000,{T0},b,0,open,\"'=HYPERLINK(\"\"x\"\")\""));
        assert_eq!(lines[3], "");
    }

    #[test]
    fn empty_and_oversized_questions_are_refused() {
        let mut room = room();
        let a = attendee("a");
        let e = room.exec(&a, Command::QuestionAsk { text: "".into() }, T0, AT0);
        assert_eq!(e.map_err(|e| e.code()), Err("empty"));
        let e = room.exec(&a, Command::QuestionAsk { text: "x".repeat(501) }, T0, AT0);
        assert_eq!(e.map_err(|e| e.code()), Err("too_long"));
        for i in 0..3 {
            ask(&mut room, &a, &format!("q{i}"), 1_000);
        }
        let e = room.exec(&a, Command::QuestionAsk { text: "more".into() }, T0, AT0);
        assert_eq!(e, Err(InteractionError::RateLimited { retry_after_ms: 10_000 }));
    }
}
