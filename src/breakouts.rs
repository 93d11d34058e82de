//! Breakout rooms (issue 6, "The webinar around the stream"), the sans-IO core: who goes into
//! which room (at random or by hand), and when a run of breakouts warns and ends. It never
//! reads the clock (`now_ms`, Unix ms, is an argument) and never spawns: the HTTP shell
//! ([`crate::http::breakouts`]) sleeps until [`Run::next_deadline`] and acts on [`Run::poll`].
//!
//! Decided here:
//! - A run splits a main room into 1 to [`MAX_ROOMS`] breakout rooms for [`MIN_DURATION_S`] to
//!   [`MAX_DURATION_S`] seconds; one run per main room at a time; no breakouts of breakouts.
//! - A random split shuffles the attendees and deals them round-robin, so room sizes differ by
//!   at most one; there must be at least one attendee per room. A split by hand names every
//!   room's participants: each must be a connected attendee, in one room only, and no room may
//!   be empty. Attendees left out of a split by hand stay in the main room.
//! - Breakout room ids are `{main room}.{run}-{n}` (`n` from 1): a `.` never appears in a room
//!   a user creates ([`crate::rooms::is_valid_name`]), so they cannot collide, and the main room
//!   is read back from the id ([`parent_of`]). `run` is random per run, so nothing of an
//!   earlier run (a revoked token, a stored chat line) ever names a room of a later one.
//! - `breakout_closing` goes out [`CLOSING_WARNING_S`] before the end (at most half the
//!   duration), once; `ends_at` is Unix ms, like an event's `at`.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Most breakout rooms in one run.
pub const MAX_ROOMS: usize = 50;
/// Shortest run, in seconds.
pub const MIN_DURATION_S: u64 = 10;
/// Longest run, in seconds (4 h).
pub const MAX_DURATION_S: u64 = 4 * 3_600;
/// How long before the end `breakout_closing` is sent (at most half the duration).
pub const CLOSING_WARNING_S: u64 = 30;
/// Longest breakout room name, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// Why a split was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakoutError {
    #[error("rooms: ask for at least one breakout room")]
    NoRooms,
    #[error("rooms: at most {max} breakout rooms, not {rooms}")]
    TooManyRooms { rooms: usize, max: usize },
    #[error("{rooms} rooms for {attendees} connected attendees: each room needs at least one")]
    NotEnoughAttendees { rooms: usize, attendees: usize },
    #[error("participant {0:?} is not an attendee connected to the room")]
    UnknownParticipant(String),
    #[error("participant {0:?} is in more than one breakout room")]
    DuplicateParticipant(String),
    #[error("breakout room {0} has no participants")]
    EmptyRoom(usize),
    #[error("breakout room {0}: a name is 1 to 64 characters, no control characters")]
    BadName(usize),
    #[error("duration_s must be between {MIN_DURATION_S} and {MAX_DURATION_S}, not {0}")]
    BadDuration(u64),
}

impl BreakoutError {
    /// The stable code of the problem it becomes (400).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRooms | Self::TooManyRooms { .. } => "bad_room_count",
            Self::NotEnoughAttendees { .. } => "not_enough_attendees",
            Self::UnknownParticipant(_) => "unknown_participant",
            Self::DuplicateParticipant(_) => "duplicate_participant",
            Self::EmptyRoom(_) => "empty_room",
            Self::BadName(_) => "bad_name",
            Self::BadDuration(_) => "bad_duration",
        }
    }
}

/// The main room of a breakout room's id; `None` for a main room.
pub fn parent_of(room_id: &str) -> Option<&str> {
    room_id.split_once('.').map(|(parent, _)| parent)
}

/// The id of breakout room `n` (from 1) of run `run` of `parent`.
pub fn room_id(parent: &str, run: &str, n: usize) -> String {
    format!("{parent}.{run}-{n}")
}

/// A participant of a split: its participant id and display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
}

/// A room of a split by hand.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandRoom {
    /// Display name; `Room {n}` when absent.
    pub name: Option<String>,
    pub participants: Vec<String>,
}

/// How the host asks to split: `{"rooms": 2}` or `{"rooms": [{"name", "participants"}, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Split {
    Random(usize),
    ByHand(Vec<HandRoom>),
}

/// A breakout room as planned: its name and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub members: Vec<Member>,
}

/// Checks a duration in seconds.
pub fn check_duration(duration_s: u64) -> Result<u64, BreakoutError> {
    if (MIN_DURATION_S..=MAX_DURATION_S).contains(&duration_s) {
        Ok(duration_s)
    } else {
        Err(BreakoutError::BadDuration(duration_s))
    }
}

/// Who goes where. `attendees` are the attendees connected to the main room.
pub fn plan(split: &Split, attendees: &[Member], rng: &mut impl Rng) -> Result<Vec<Group>, BreakoutError> {
    let count = match split {
        Split::Random(n) => *n,
        Split::ByHand(rooms) => rooms.len(),
    };
    if count == 0 {
        return Err(BreakoutError::NoRooms);
    }
    if count > MAX_ROOMS {
        return Err(BreakoutError::TooManyRooms { rooms: count, max: MAX_ROOMS });
    }
    let default_name = |i: usize| format!("Room {}", i + 1);
    match split {
        Split::Random(rooms) => {
            if *rooms > attendees.len() {
                return Err(BreakoutError::NotEnoughAttendees { rooms: *rooms, attendees: attendees.len() });
            }
            let mut shuffled = attendees.to_vec();
            shuffled.sort_by(|a, b| a.id.cmp(&b.id));
            shuffled.dedup_by(|a, b| a.id == b.id);
            shuffled.shuffle(rng);
            let mut groups: Vec<Group> =
                (0..*rooms).map(|i| Group { name: default_name(i), members: Vec::new() }).collect();
            for (i, member) in shuffled.into_iter().enumerate() {
                groups[i % rooms].members.push(member);
            }
            Ok(groups)
        }
        Split::ByHand(rooms) => {
            let mut placed = std::collections::HashSet::new();
            let mut groups = Vec::with_capacity(rooms.len());
            for (i, room) in rooms.iter().enumerate() {
                let name = match room.name.as_deref().map(str::trim) {
                    None => default_name(i),
                    Some(n)
                        if n.is_empty() || n.chars().count() > NAME_MAX_CHARS || n.chars().any(char::is_control) =>
                    {
                        return Err(BreakoutError::BadName(i + 1));
                    }
                    Some(n) => n.to_owned(),
                };
                if room.participants.is_empty() {
                    return Err(BreakoutError::EmptyRoom(i + 1));
                }
                let mut members = Vec::with_capacity(room.participants.len());
                for id in &room.participants {
                    let member = attendees
                        .iter()
                        .find(|a| a.id == *id)
                        .ok_or_else(|| BreakoutError::UnknownParticipant(id.clone()))?;
                    if !placed.insert(id.as_str()) {
                        return Err(BreakoutError::DuplicateParticipant(id.clone()));
                    }
                    members.push(member.clone());
                }
                groups.push(Group { name, members });
            }
            Ok(groups)
        }
    }
}

/// A breakout room of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakoutRoom {
    pub id: String,
    pub name: String,
    pub participants: Vec<Member>,
}

/// What is due at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Tell everyone the rooms close soon (`breakout_closing`).
    Closing,
    /// Bring everyone back.
    End,
}

/// One run of breakouts of a main room, from the split to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub parent: String,
    /// Random per run; part of every breakout room id.
    pub tag: String,
    pub started_at_ms: u64,
    pub ends_at_ms: u64,
    /// When `breakout_closing` is due (`None`: sent already).
    closing_at_ms: Option<u64>,
    pub rooms: Vec<BreakoutRoom>,
}

impl Run {
    /// A run of `groups` for `duration_s` (checked with [`check_duration`]) from `now_ms`.
    pub fn new(parent: &str, tag: &str, groups: Vec<Group>, duration_s: u64, now_ms: u64) -> Self {
        let ends_at_ms = now_ms + duration_s * 1_000;
        let warning_ms = CLOSING_WARNING_S.min(duration_s / 2) * 1_000;
        let rooms = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| BreakoutRoom { id: room_id(parent, tag, i + 1), name: g.name, participants: g.members })
            .collect();
        Self {
            parent: parent.to_owned(),
            tag: tag.to_owned(),
            started_at_ms: now_ms,
            ends_at_ms,
            closing_at_ms: (warning_ms > 0).then(|| ends_at_ms - warning_ms),
            rooms,
        }
    }

    /// The next instant something is due (Unix ms).
    pub fn next_deadline(&self) -> u64 {
        self.closing_at_ms.unwrap_or(self.ends_at_ms).min(self.ends_at_ms)
    }

    /// What is due at `now_ms`, once each: the closing warning, then the end (the end alone if
    /// the warning's time has passed with it).
    pub fn poll(&mut self, now_ms: u64) -> Option<Due> {
        if now_ms >= self.ends_at_ms {
            self.closing_at_ms = None;
            return Some(Due::End);
        }
        match self.closing_at_ms {
            Some(at) if now_ms >= at => {
                self.closing_at_ms = None;
                Some(Due::Closing)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn attendees(n: usize) -> Vec<Member> {
        (0..n).map(|i| Member { id: format!("a-{i}"), name: format!("Guest {i}") }).collect()
    }

    fn hand(name: Option<&str>, ids: &[&str]) -> HandRoom {
        HandRoom { name: name.map(str::to_owned), participants: ids.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_random_split_is_balanced_and_places_everyone_once() {
        for (people, rooms) in [(6, 2), (7, 3), (5, 5), (1, 1), (10, 4)] {
            for seed in 0..20 {
                let groups = plan(&Split::Random(rooms), &attendees(people), &mut StdRng::seed_from_u64(seed)).unwrap();
                assert_eq!(groups.len(), rooms);
                let sizes: Vec<usize> = groups.iter().map(|g| g.members.len()).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1 && *min >= 1, "{people} in {rooms}: {sizes:?}");
                let mut ids: Vec<&str> = groups.iter().flat_map(|g| g.members.iter().map(|m| m.id.as_str())).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), people, "everyone exactly once");
            }
        }
        let names: Vec<String> = plan(&Split::Random(2), &attendees(4), &mut StdRng::seed_from_u64(1))
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(names, ["Room 1", "Room 2"]);
    }

    #[test]
    fn a_random_split_depends_on_the_draw() {
        let first = |seed| plan(&Split::Random(2), &attendees(8), &mut StdRng::seed_from_u64(seed)).unwrap();
        assert!((1..20).any(|seed| first(seed)[0].members != first(0)[0].members), "not always the same rooms");
    }

    #[test]
    fn bad_splits_are_refused_with_their_reason() {
        let six = attendees(6);
        let rng = &mut StdRng::seed_from_u64(0);
        assert_eq!(plan(&Split::Random(0), &six, rng), Err(BreakoutError::NoRooms));
        assert_eq!(plan(&Split::ByHand(vec![]), &six, rng), Err(BreakoutError::NoRooms));
        assert_eq!(
            plan(&Split::Random(7), &six, rng),
            Err(BreakoutError::NotEnoughAttendees { rooms: 7, attendees: 6 })
        );
        assert_eq!(
            plan(&Split::Random(51), &attendees(60), rng),
            Err(BreakoutError::TooManyRooms { rooms: 51, max: MAX_ROOMS })
        );
        let by_hand = |rooms| plan(&Split::ByHand(rooms), &six, &mut StdRng::seed_from_u64(0));
        assert_eq!(
            by_hand(vec![hand(None, &["a-1"]), hand(None, &["a-9"])]),
            Err(BreakoutError::UnknownParticipant("a-9".into()))
        );
        assert_eq!(
            by_hand(vec![hand(None, &["a-1", "a-2"]), hand(None, &["a-2"])]),
            Err(BreakoutError::DuplicateParticipant("a-2".into()))
        );
        assert_eq!(by_hand(vec![hand(None, &["a-1"]), hand(None, &[])]), Err(BreakoutError::EmptyRoom(2)));
        assert_eq!(by_hand(vec![hand(Some("  "), &["a-1"])]), Err(BreakoutError::BadName(1)));
        assert_eq!(check_duration(9), Err(BreakoutError::BadDuration(9)));
        assert_eq!(check_duration(MAX_DURATION_S + 1), Err(BreakoutError::BadDuration(MAX_DURATION_S + 1)));
        assert_eq!(check_duration(300), Ok(300));
    }

    #[test]
    fn a_split_by_hand_keeps_the_hosts_rooms_and_leaves_the_others_out() {
        let groups = plan(
            &Split::ByHand(vec![hand(Some("Team A"), &["a-3", "a-0"]), hand(None, &["a-5"])]),
            &attendees(6),
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        assert_eq!(groups[0].name, "Team A");
        assert_eq!(groups[0].members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["Guest 3", "Guest 0"]);
        assert_eq!((groups[1].name.as_str(), groups[1].members.len()), ("Room 2", 1));
    }

    #[test]
    fn the_split_body_reads_a_count_or_a_list() {
        assert_eq!(serde_json::from_str::<Split>("3").unwrap(), Split::Random(3));
        let by_hand: Split = serde_json::from_str(r#"[{"name":"A","participants":["a-1"]}]"#).unwrap();
        assert_eq!(by_hand, Split::ByHand(vec![hand(Some("A"), &["a-1"])]));
        assert!(serde_json::from_str::<Split>("-1").is_err());
        assert!(serde_json::from_str::<Split>(r#"[{"participants":["a"],"extra":1}]"#).is_err());
    }

    #[test]
    fn ids_name_their_main_room_and_cannot_be_user_rooms() {
        let id = room_id("town-hall", "x7k2p9", 2);
        assert_eq!(id, "town-hall.x7k2p9-2");
        assert_eq!(parent_of(&id), Some("town-hall"));
        assert_eq!(parent_of("town-hall"), None);
        assert!(!crate::rooms::is_valid_name(&id));
    }

    #[test]
    fn the_timer_warns_once_then_ends() {
        let groups = plan(&Split::Random(2), &attendees(4), &mut StdRng::seed_from_u64(0)).unwrap();
        let mut run = Run::new("r", "t", groups, 300, 1_000_000);
        assert_eq!(run.ends_at_ms, 1_300_000);
        assert_eq!(run.rooms[1].id, "r.t-2");
        assert_eq!(run.next_deadline(), 1_270_000, "30 s before the end");
        assert_eq!(run.poll(1_269_999), None);
        assert_eq!(run.poll(1_270_000), Some(Due::Closing));
        assert_eq!(run.poll(1_270_001), None, "once");
        assert_eq!(run.next_deadline(), 1_300_000);
        assert_eq!(run.poll(1_300_000), Some(Due::End));

        // Short runs warn at half time; a late wake-up ends at once.
        let groups = plan(&Split::Random(1), &attendees(1), &mut StdRng::seed_from_u64(0)).unwrap();
        let mut short = Run::new("r", "u", groups, 20, 0);
        assert_eq!(short.next_deadline(), 10_000);
        assert_eq!(short.poll(25_000), Some(Due::End));
    }
}
