//! Scripted sessions, property-style: whatever commands arrive, in whatever order, a room
//! rebuilt from its stored log equals the live one, and delivery rules hold on every event.

use crate::store::{EventStore, MemoryStore};
use crate::testutil::*;
use crate::{
    Actor, Command, Event, EventKind, InteractionConfig, ProgramTime, QuestionStatus, Request, Role, RoomInteraction,
    SqliteStore, Visibility,
};

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn actors() -> Vec<Actor> {
    let mut actors = vec![host(), presenter()];
    actors.extend((0..5).map(|i| attendee(&format!("a{i}"))));
    actors
}

fn random_command(rng: &mut Rng, last_seq: u64) -> Command {
    let poll = format!("p{}", rng.below(5));
    let question = format!("q{}", rng.below(8));
    let message = rng.next() % (last_seq + 3);
    let texts = ["hi", "", "  spaced  ", "é", "a question?", "x"];
    let text = if rng.below(40) == 0 { "y".repeat(501) } else { rng.pick(&texts).to_string() };
    let statuses =
        [QuestionStatus::Open, QuestionStatus::Answering, QuestionStatus::Answered, QuestionStatus::Dismissed];
    match rng.below(17) {
        0 | 1 => Command::ChatSend { text, visibility: Visibility::Everyone },
        2 => Command::ChatSend { text, visibility: Visibility::Moderators },
        3 => Command::ChatDelete { message },
        4 => Command::ChatPin { message },
        5 => Command::ChatUnpin,
        6 => Command::QuestionAsk { text },
        7 => Command::QuestionUpvote { question },
        8 => Command::QuestionMark { question, status: *rng.pick(&statuses) },
        9 => {
            // Mostly valid: 2 to 4 distinct options; sometimes one option, or a duplicate.
            let count = rng.below(4) + 1;
            let dup = rng.below(8) == 0;
            let options = (0..count).map(|i| format!("opt{}", if dup { 0 } else { i })).collect();
            let question = if rng.below(8) == 0 { text } else { "Which?".into() };
            Command::PollCreate { question, options, multiple: rng.below(2) == 0, allow_change: rng.below(3) > 0 }
        }
        10 => Command::PollOpen { poll },
        11 | 12 => {
            let count = if rng.below(3) == 0 { rng.below(4) } else { 1 };
            let options = (0..count).map(|_| rng.below(4)).collect();
            Command::PollVote { poll, options }
        }
        13 if rng.below(3) == 0 => Command::PollClose { poll },
        13 => Command::PollVote { poll, options: vec![rng.below(2)] },
        15 => Command::ChapterStart { title: text },
        14 => rng.pick(&[Command::HandRaise, Command::HandLower, Command::HandClear { participant: None }]).clone(),
        _ => {
            let who = format!("a{}", rng.below(5));
            if rng.below(2) == 0 {
                Command::HandClear { participant: Some(who) }
            } else {
                Command::HandInvite { participant: who }
            }
        }
    }
}

/// Runs `steps` random commands; returns the live room and its log.
fn session(seed: u64, steps: usize) -> Logged {
    let mut rng = Rng(seed);
    let actors = actors();
    let mut room = Logged::default();
    let (mut now, mut at) = (T0, AT0.0);
    let mut last: Option<(Actor, Request)> = None;
    for step in 0..steps {
        now += rng.next() % 700;
        // Program time mostly follows, sometimes steps back (a program switch).
        at = if rng.below(20) == 0 { at.saturating_sub(3_000) } else { at + rng.next() % 700 };
        // A moderator acts one step in four; one step in ten resends the previous request (a
        // client that reconnected), which replays when it carried a nonce.
        let (actor, request) = match last.take() {
            Some(previous) if rng.below(10) == 0 => previous,
            _ => {
                let actor = if rng.below(4) == 0 { &actors[rng.below(2)] } else { rng.pick(&actors) };
                let command = random_command(&mut rng, room.room.last_seq());
                let nonce = (rng.below(2) == 0).then(|| format!("n{step}"));
                (actor.clone(), Request { nonce, command })
            }
        };
        last = Some((actor.clone(), request.clone()));
        let before = room.room.last_seq();
        match room.run(&actor, request, now, ProgramTime(at)) {
            Ok(handled) if handled.replayed => {
                assert_eq!(room.room.last_seq(), before, "a replay stores nothing");
            }
            Ok(handled) => {
                for (i, e) in handled.events.iter().enumerate() {
                    assert_eq!(e.seq, before + 1 + i as u64);
                }
            }
            Err(e) => {
                assert!((400..500).contains(&e.status()), "{e}");
                assert_eq!(room.room.last_seq(), before, "a refused command stores nothing");
            }
        }
    }
    room
}

fn check_log_invariants(log: &[Event]) {
    for pair in log.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert!(pair[1].at >= pair[0].at, "at never goes back");
    }
    for e in log {
        let secret = matches!(
            &e.kind,
            EventKind::ChatMessage { visibility: Visibility::Moderators, .. }
                | EventKind::ChatDeleted { visibility: Visibility::Moderators, .. }
                | EventKind::PollCreated { .. }
                | EventKind::PollVoted { .. }
                | EventKind::HandRaised
                | EventKind::HandLowered { .. }
                | EventKind::HandInvited { .. }
        );
        assert_eq!(!e.visible_to(Role::Attendee), secret, "{e:?}");
        assert!(e.visible_to(Role::Host) && e.visible_to(Role::Presenter));
        if let EventKind::ChatDeleted { author, .. } = &e.kind {
            assert!(!author.is_empty() && e.visible_to_participant(Role::Attendee, author), "{e:?}");
        }
    }
}

fn assert_same_room(live: &RoomInteraction, rebuilt: &RoomInteraction) {
    assert_eq!(rebuilt.state(), live.state());
    for viewer in actors() {
        assert_eq!(rebuilt.snapshot(&viewer), live.snapshot(&viewer));
    }
}

#[test]
fn rebuilding_from_the_log_gives_the_live_state() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut replays = 0;
    for seed in 1..=20u64 {
        let live = session(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 600);
        check_log_invariants(&live.log);
        kinds.extend(live.log.iter().map(|e| e.kind.type_name()));
        replays += live.replays;
        // Through JSON, as the store and the wire carry it.
        // `Event::to_json` is infallible: this reaches every kind of event.
        let json: Vec<String> = live.log.iter().map(Event::to_json).collect();
        let parsed = json.iter().map(|j| serde_json::from_str::<Event>(j).expect("parses"));
        let rebuilt = RoomInteraction::restore(InteractionConfig::default(), parsed).expect("restore");
        assert_same_room(&live.room, &rebuilt);
        // Every prefix of the log is a valid state too (a crash between two appends).
        let half = RoomInteraction::restore(InteractionConfig::default(), live.log[..live.log.len() / 2].to_vec());
        assert!(half.is_ok());
    }
    // The script reaches every kind of event, and resends.
    assert_eq!(kinds.len(), 16, "{kinds:?}");
    assert!(replays > 20, "{replays} replays");
}

#[test]
fn a_session_survives_a_restart_through_sqlite() {
    let dir = std::env::temp_dir().join(format!("townhall-interaction-{}-session", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let live = session(7, 1_500);
    {
        let mut store = SqliteStore::open_in(&dir).expect("open");
        // Appended as the server does: one batch per handled command, here in chunks.
        for chunk in live.log.chunks(7) {
            store.append("room-1", chunk).expect("append");
        }
    }
    let store = SqliteStore::open_in(&dir).expect("reopen");
    let events = store.load("room-1").expect("load");
    let rebuilt = RoomInteraction::restore(InteractionConfig::default(), events).expect("restore");
    assert_same_room(&live.room, &rebuilt);
    let mut memory = MemoryStore::default();
    memory.append("room-1", &live.log).expect("append");
    assert_eq!(store.since("room-1", 100, 50), memory.since("room-1", 100, 50));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
