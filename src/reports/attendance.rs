//! Attendance of one room as a pure state machine: who joined and left (the room's WebSocket,
//! a participant's first connection to its last, as [`crate::presence`] counts them), how many
//! were there at once, and how long each watched, from the player's heartbeats. Time is an
//! argument (Unix ms); every change is a [`Record`] that the shell stores and that
//! [`RoomAttendance::apply`] replays, so the numbers after a restart are the same.
//!
//! **Watch time.** The watch page sends `{"type":"heartbeat","playing":true|false}` every
//! `reports.heartbeat_interval_s` (I) seconds. Each *playing* heartbeat credits exactly I
//! seconds, so a scripted session gives exact numbers; a paused one credits nothing. A client
//! cannot inflate its time by sending fast: since it joined (its first open connection), a
//! participant is credited at most `⌊(elapsed + I/2) / I⌋ + 1` heartbeats (elapsed = now −
//! joined). The half interval absorbs timer jitter (a heartbeat a few ms early still counts);
//! the `+ 1` is the heartbeat sent on starting to play. So a participant's watch time never
//! exceeds its connected time by more than 1.5 I, and heartbeats over the cap are ignored (and
//! not stored). Heartbeats of a participant with two tabs share one cap: nobody watches twice.
//!
//! **Peak concurrent**: the most distinct participants connected at once.
//! **After a crash**: whoever was connected when the server died left when it starts again
//! ([`RoomAttendance::close_all`]), since their connections are gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use townhall_interaction::Role;

/// One change of a room's attendance, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A participant's first connection opened.
    Joined { participant: String, name: String, role: Role, at_ms: u64 },
    /// Its last connection closed.
    Left { participant: String, at_ms: u64 },
    /// A playing heartbeat was credited.
    Watched { participant: String, seconds: u64, at_ms: u64 },
}

/// What is known of one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub name: String,
    pub role: Role,
    pub first_joined_ms: u64,
    /// When it last left; `None` while connected (or never left).
    pub last_left_ms: Option<u64>,
    pub watch_s: u64,
}

/// A connected participant's heartbeat window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    joined_ms: u64,
    credited: u64,
}

/// One room's attendance.
#[derive(Debug, Clone)]
pub struct RoomAttendance {
    interval_s: u64,
    people: BTreeMap<String, Attendee>,
    connected: BTreeMap<String, Window>,
    peak: usize,
}

impl RoomAttendance {
    /// Empty, crediting `interval_s` per playing heartbeat.
    pub fn new(interval_s: u64) -> Self {
        Self { interval_s: interval_s.max(1), people: BTreeMap::new(), connected: BTreeMap::new(), peak: 0 }
    }

    /// Applies a stored (or just made) record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Joined { participant, name, role, at_ms } => {
                let person = self.people.entry(participant.clone()).or_insert_with(|| Attendee {
                    name: name.clone(),
                    role: *role,
                    first_joined_ms: *at_ms,
                    last_left_ms: None,
                    watch_s: 0,
                });
                (person.name, person.role, person.last_left_ms) = (name.clone(), *role, None);
                self.connected.insert(participant.clone(), Window { joined_ms: *at_ms, credited: 0 });
                self.peak = self.peak.max(self.connected.len());
            }
            Record::Left { participant, at_ms } => {
                if self.connected.remove(participant).is_some()
                    && let Some(person) = self.people.get_mut(participant)
                {
                    person.last_left_ms = Some(*at_ms);
                }
            }
            Record::Watched { participant, seconds, .. } => {
                if let Some(window) = self.connected.get_mut(participant) {
                    window.credited += 1;
                }
                if let Some(person) = self.people.get_mut(participant) {
                    person.watch_s += seconds;
                }
            }
        }
    }

    /// A participant's first connection opened: the record to store, then [`apply`](Self::apply)
    /// (as for [`leave`](Self::leave) and [`heartbeat`](Self::heartbeat): nothing changes until
    /// the record is applied, so a record that could not be stored is never counted).
    pub fn join(&self, participant: &str, name: &str, role: Role, now_ms: u64) -> Record {
        Record::Joined { participant: participant.into(), name: name.into(), role, at_ms: now_ms }
    }

    /// Its last connection closed; `None` if it was not connected.
    pub fn leave(&self, participant: &str, now_ms: u64) -> Option<Record> {
        self.connected
            .contains_key(participant)
            .then(|| Record::Left { participant: participant.into(), at_ms: now_ms })
    }

    /// A heartbeat; the credit it earns, if any (see the module doc for the cap).
    pub fn heartbeat(&self, participant: &str, playing: bool, now_ms: u64) -> Option<Record> {
        let window = self.connected.get(participant)?;
        let interval_ms = self.interval_s * 1_000;
        let elapsed = now_ms.saturating_sub(window.joined_ms);
        let allowed = (elapsed + interval_ms / 2) / interval_ms + 1;
        if !playing || window.credited >= allowed {
            return None;
        }
        Some(Record::Watched { participant: participant.into(), seconds: self.interval_s, at_ms: now_ms })
    }

    /// Applies `record`, if any, and gives it back.
    pub fn step(&mut self, record: Option<Record>) -> Option<Record> {
        if let Some(r) = &record {
            self.apply(r);
        }
        record
    }

    /// Everyone still connected leaves at `now_ms` (after a restart: their connections are
    /// gone); applied, and returned to be stored.
    pub fn close_all(&mut self, now_ms: u64) -> Vec<Record> {
        let open: Vec<String> = self.connected.keys().cloned().collect();
        open.iter().filter_map(|p| self.step(self.leave(p, now_ms))).collect()
    }

    pub fn people(&self) -> &BTreeMap<String, Attendee> {
        &self.people
    }

    /// Distinct participants connected now.
    pub fn connected(&self) -> usize {
        self.connected.len()
    }

    /// The most distinct participants connected at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn interval_s(&self) -> u64 {
        self.interval_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn each_playing_heartbeat_credits_the_interval_and_bursts_are_capped() {
        let mut a = RoomAttendance::new(15);
        a.step(Some(a.join("a-1", "Ada", Role::Attendee, T0)));
        // The heartbeat on starting to play counts; a burst right after does not.
        assert!(a.step(a.heartbeat("a-1", true, T0 + 100)).is_some());
        for i in 0..10 {
            assert_eq!(a.step(a.heartbeat("a-1", true, T0 + 200 + i)), None);
        }
        // On time, or a little early: credited.
        assert!(a.step(a.heartbeat("a-1", true, T0 + 14_990)).is_some());
        assert!(a.step(a.heartbeat("a-1", true, T0 + 30_000)).is_some());
        assert_eq!(a.step(a.heartbeat("a-1", true, T0 + 30_500)), None);
        // Paused: nothing.
        assert_eq!(a.step(a.heartbeat("a-1", false, T0 + 45_000)), None);
        assert_eq!(a.people()["a-1"].watch_s, 45);
        // After a pause a client may catch up at most to its connected time (+1.5 I).
        let caught_up = (0..100).filter(|_| a.step(a.heartbeat("a-1", true, T0 + 120_000)).is_some()).count();
        assert_eq!(caught_up, 6, "⌊(120 + 7.5) / 15⌋ + 1 = 9 credits in all");
        assert_eq!(a.people()["a-1"].watch_s, 135);
        // Not connected: nothing.
        assert_eq!(a.step(a.heartbeat("a-2", true, T0)), None);
    }

    #[test]
    fn peak_counts_distinct_participants_and_replay_gives_the_same_state() {
        let mut a = RoomAttendance::new(2);
        let mut log = Vec::new();
        log.extend(a.step(Some(a.join("a-1", "Ada", Role::Attendee, T0))));
        log.extend(a.step(Some(a.join("h", "Host", Role::Host, T0 + 1))));
        log.extend(a.step(a.heartbeat("a-1", true, T0 + 2)));
        log.extend(a.step(a.leave("a-1", T0 + 3_000)));
        assert_eq!(a.leave("a-1", T0 + 3_001), None, "leaves once");
        log.extend(a.step(Some(a.join("a-2", "Bo", Role::Attendee, T0 + 4_000))));
        log.extend(a.step(Some(a.join("a-1", "Ada L", Role::Attendee, T0 + 5_000))));
        assert_eq!((a.connected(), a.peak()), (3, 3));
        log.extend(a.close_all(T0 + 9_000));
        assert_eq!((a.connected(), a.peak()), (0, 3));
        let ada = &a.people()["a-1"];
        assert_eq!(
            (ada.name.as_str(), ada.first_joined_ms, ada.last_left_ms, ada.watch_s),
            ("Ada L", T0, Some(T0 + 9_000), 2)
        );

        let mut replayed = RoomAttendance::new(2);
        for record in &log {
            let stored = serde_json::to_string(record).unwrap();
            replayed.apply(&serde_json::from_str(&stored).unwrap());
        }
        assert_eq!(replayed.people(), a.people());
        assert_eq!((replayed.connected(), replayed.peak()), (0, 3));
    }
}
