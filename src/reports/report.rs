//! The report of a room (`GET /api/rooms/{room}/report`): attendance and engagement, one row
//! per person, as JSON and CSV (RFC 4180). Pure: built from the room's attendance
//! ([`super::attendance`]), its registrations and its interaction log.
//!
//! Definitions:
//! - `registered`: every registration (`approved` + `pending` + `rejected`);
//! - `joined`: distinct participants who connected to the room's WebSocket, any role;
//! - `peak_concurrent`: the most of them connected at once; `connected`: now;
//! - `watch_s`: seconds credited by playing heartbeats (the rule is in `attendance`);
//! - engagement, from the log: `chat_messages` (`chat_message` events, deleted ones included),
//!   `questions` (`question_asked`), `upvotes` (questions upvoted at the end: `question_voted`
//!   toggles, net), `votes` (polls voted in: distinct polls with a `poll_voted`; a changed vote
//!   counts once), `hands` (`hand_raised`).
//!
//! People: whoever registered, joined or did something in the log, sorted by first join (those
//! who never joined last), then participant id. The name is the registration's, else the one
//! the participant last joined with, else its name in the log.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use townhall_interaction::qa::csv_field;
use townhall_interaction::{Event, EventKind, Role};

use super::attendance::RoomAttendance;
use crate::datetime::format_rfc3339;
use crate::registration::{Registration, RegistrationStatus};

/// The report of one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub room: String,
    pub registered: u64,
    pub approved: u64,
    pub pending: u64,
    pub rejected: u64,
    pub joined: u64,
    pub peak_concurrent: u64,
    pub connected: u64,
    pub watch_s_total: u64,
    pub heartbeat_interval_s: u64,
    pub people: Vec<PersonReport>,
}

/// One person's row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PersonReport {
    pub participant: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Option<Role>,
    /// Its registration's status, if it registered.
    pub registration: Option<RegistrationStatus>,
    /// RFC 3339 (UTC, seconds).
    pub first_joined: Option<String>,
    pub last_left: Option<String>,
    pub watch_s: u64,
    pub chat_messages: u64,
    pub questions: u64,
    pub upvotes: u64,
    pub votes: u64,
    pub hands: u64,
    #[serde(skip)]
    first_joined_ms: Option<u64>,
}

/// Builds the report (see the module doc).
pub fn build(room: &str, attendance: &RoomAttendance, registrations: &[Registration], events: &[Event]) -> Report {
    let mut people: BTreeMap<String, PersonReport> = BTreeMap::new();
    // Engagement from the log (the actor's name and role are the fallback identity).
    let mut upvotes: BTreeMap<String, i64> = BTreeMap::new();
    let mut polls: BTreeSet<(String, String)> = BTreeSet::new();
    for event in events {
        let id = &event.actor.participant_id;
        let p = people.entry(id.clone()).or_insert_with(|| PersonReport {
            participant: id.clone(),
            name: event.actor.name.clone(),
            role: Some(event.actor.role),
            ..Default::default()
        });
        match &event.kind {
            EventKind::ChatMessage { .. } => p.chat_messages += 1,
            EventKind::QuestionAsked { .. } => p.questions += 1,
            EventKind::HandRaised => p.hands += 1,
            EventKind::QuestionVoted { voted, .. } => {
                *upvotes.entry(id.clone()).or_default() += if *voted { 1 } else { -1 }
            }
            EventKind::PollVoted { poll, .. } => {
                polls.insert((id.clone(), poll.clone()));
            }
            _ => {}
        }
    }
    for (id, n) in upvotes {
        if let Some(p) = people.get_mut(&id) {
            p.upvotes = u64::try_from(n).unwrap_or(0);
        }
    }
    for (id, _) in polls {
        if let Some(p) = people.get_mut(&id) {
            p.votes += 1;
        }
    }
    for (id, a) in attendance.people() {
        let p =
            people.entry(id.clone()).or_insert_with(|| PersonReport { participant: id.clone(), ..Default::default() });
        p.name = a.name.clone();
        p.role = Some(a.role);
        p.first_joined_ms = Some(a.first_joined_ms);
        p.first_joined = Some(format_rfc3339((a.first_joined_ms / 1_000) as i64));
        p.last_left = a.last_left_ms.map(|ms| format_rfc3339((ms / 1_000) as i64));
        p.watch_s = a.watch_s;
    }
    let (mut approved, mut pending, mut rejected) = (0, 0, 0);
    for r in registrations {
        match r.status {
            RegistrationStatus::Approved => approved += 1,
            RegistrationStatus::Pending => pending += 1,
            RegistrationStatus::Rejected => rejected += 1,
        }
        let p = people
            .entry(r.participant.clone())
            .or_insert_with(|| PersonReport { participant: r.participant.clone(), ..Default::default() });
        p.name = r.name.clone();
        p.email = Some(r.email.clone());
        p.registration = Some(r.status);
        p.role.get_or_insert(Role::Attendee);
    }
    let mut people: Vec<PersonReport> = people.into_values().collect();
    people.sort_by(|a, b| {
        (a.first_joined_ms.is_none(), a.first_joined_ms, &a.participant).cmp(&(
            b.first_joined_ms.is_none(),
            b.first_joined_ms,
            &b.participant,
        ))
    });
    Report {
        room: room.to_owned(),
        registered: approved + pending + rejected,
        approved,
        pending,
        rejected,
        joined: attendance.people().len() as u64,
        peak_concurrent: attendance.peak() as u64,
        connected: attendance.connected() as u64,
        watch_s_total: attendance.people().values().map(|a| a.watch_s).sum(),
        heartbeat_interval_s: attendance.interval_s(),
        people,
    }
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 14] = [
    "participant",
    "name",
    "email",
    "role",
    "registration",
    "first_joined",
    "last_left",
    "watch_s",
    "chat_messages",
    "questions",
    "upvotes",
    "votes",
    "hands",
    "room",
];

/// One row per person (the room repeated in the last column, so files can be concatenated).
pub fn to_csv(report: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let role = |r: Option<Role>| match r {
        Some(Role::Host) => "host",
        Some(Role::Presenter) => "presenter",
        Some(Role::Attendee) => "attendee",
        None => "",
    };
    for p in &report.people {
        let row = [
            csv_field(&p.participant),
            csv_field(&p.name),
            csv_field(p.email.as_deref().unwrap_or("")),
            role(p.role).to_owned(),
            p.registration.map_or("", RegistrationStatus::as_str).to_owned(),
            p.first_joined.clone().unwrap_or_default(),
            p.last_left.clone().unwrap_or_default(),
            p.watch_s.to_string(),
            p.chat_messages.to_string(),
            p.questions.to_string(),
            p.upvotes.to_string(),
            p.votes.to_string(),
            p.hands.to_string(),
            csv_field(&report.room),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_interaction::{Actor, ProgramTime, Visibility};

    fn event(seq: u64, who: &Actor, kind: EventKind) -> Event {
        Event { seq, at: ProgramTime(seq), ts: seq, actor: who.clone(), nonce: None, kind }
    }

    fn registration(participant: &str, email: &str, status: RegistrationStatus) -> Registration {
        Registration {
            id: format!("id-{participant}"),
            room: "r1".into(),
            participant: participant.into(),
            name: format!("Reg {participant}"),
            email: email.into(),
            fields: BTreeMap::new(),
            status,
            registered_at: 0,
            token: String::new(),
        }
    }

    #[test]
    fn counts_attendance_engagement_and_registrations_per_person() {
        let t0 = 1_800_000_000_000;
        let mut a = RoomAttendance::new(10);
        a.step(Some(a.join("r-1", "Ada", Role::Attendee, t0)));
        a.step(Some(a.join("h", "Host", Role::Host, t0 + 1_000)));
        a.step(a.heartbeat("r-1", true, t0 + 1_000));
        a.step(a.leave("r-1", t0 + 20_000));
        let ada = Actor::new("r-1", "Ada", Role::Attendee);
        let host = Actor::new("h", "Host", Role::Host);
        let guest = Actor::new("a-9", "Guest", Role::Attendee);
        let chat = || EventKind::ChatMessage { id: 1, text: "hi, all".into(), visibility: Visibility::Everyone };
        let vote = |poll: &str| EventKind::PollVoted { poll: poll.into(), options: vec![0] };
        let upvote = |voted| EventKind::QuestionVoted { question: "q1".into(), voted, votes: 1 };
        let events = vec![
            event(1, &ada, chat()),
            event(2, &ada, chat()),
            event(3, &guest, EventKind::QuestionAsked { id: "q1".into(), text: "?".into() }),
            event(4, &ada, upvote(true)),
            event(5, &guest, upvote(true)),
            event(6, &guest, upvote(false)),
            event(7, &ada, vote("p1")),
            event(8, &ada, vote("p1")),
            event(9, &ada, vote("p2")),
            event(10, &ada, EventKind::HandRaised),
            event(11, &host, EventKind::HandsCleared),
        ];
        let regs = [
            registration("r-1", "ada@x.org", RegistrationStatus::Approved),
            registration("r-2", "bo@x.org", RegistrationStatus::Pending),
            registration("r-3", "cy@x.org", RegistrationStatus::Rejected),
        ];
        let report = build("r1", &a, &regs, &events);
        assert_eq!((report.registered, report.approved, report.pending, report.rejected), (3, 1, 1, 1));
        assert_eq!((report.joined, report.peak_concurrent, report.connected, report.watch_s_total), (2, 2, 1, 10));
        let order: Vec<&str> = report.people.iter().map(|p| p.participant.as_str()).collect();
        assert_eq!(order, ["r-1", "h", "a-9", "r-2", "r-3"]);
        let ada = &report.people[0];
        assert_eq!(ada.name, "Reg r-1", "the registration names the person");
        assert_eq!(ada.email.as_deref(), Some("ada@x.org"));
        assert_eq!(
            (ada.watch_s, ada.chat_messages, ada.questions, ada.upvotes, ada.votes, ada.hands),
            (10, 2, 0, 1, 2, 1)
        );
        assert_eq!(ada.last_left.as_deref(), Some("2027-01-15T08:00:20Z"));
        let guest = &report.people[2];
        assert_eq!(
            (guest.name.as_str(), guest.questions, guest.upvotes, guest.first_joined.as_deref()),
            ("Guest", 1, 0, None)
        );
        let csv = to_csv(&report);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "r-1,Reg r-1,ada@x.org,attendee,approved,2027-01-15T08:00:00Z,2027-01-15T08:00:20Z,10,2,0,1,2,1,r1"
        );
        assert_eq!(lines.len(), 2 + report.people.len());
    }
}
