//! Interaction events carried in the program itself, for players with no WebSocket and for the
//! replay: as EXT-X-DATERANGE in every media playlist (RFC 8216bis-17 §4.4.5.1, kept through
//! delta updates by the playlist model: CAN-SKIP-DATERANGES, RECENTLY-REMOVED-DATERANGES) and
//! as ID3 timed metadata in `emsg` boxes of the parts ([`townhall_packager::segmenter::metadata`]).
//!
//! The CLASS values (also in docs/API.md); every time is the event's program time `at`:
//! - `townhall.poll`, ID `poll-<poll id>`: START-DATE when the poll opened, END-DATE when it
//!   closed; `X-QUESTION`, `X-OPTIONS` (a JSON array of the option texts), `X-MULTIPLE` and
//!   `X-ALLOW-CHANGE` (`YES`/`NO`), and at close
//!   `X-RESULTS` (a JSON array of counts, in option order) and `X-VOTERS`.
//! - `townhall.question`, ID `question-<question id>-<seq>`: the span during which a question
//!   is being answered (from `answering` to the next status); `X-TEXT`, `X-QUESTION-ID`, and at
//!   the end `X-STATUS`.
//! - `townhall.chapter`, ID `chapter-<chapter id>`: from a chapter's start to the next one's;
//!   `X-TITLE`.
//!
//! Text and JSON values (`X-QUESTION`, `X-OPTIONS`, `X-RESULTS`, `X-TEXT`, `X-TITLE`) are
//! percent-encoded UTF-8 (RFC 3986 §2.1, every byte but `A-Z a-z 0-9 - . _ ~`), because a
//! quoted-string cannot hold `"`, CR or LF (§4.2): `decodeURIComponent` gives them back exactly.
//! A range is only ever given more attributes (END-DATE, results), never different values for
//! the ones it had (§4.4.5.1). In `emsg` go the events every attendee may see, as the same JSON
//! the WebSocket sends, in an ID3 `TXXX` frame described `townhall`.

use std::collections::HashMap;

use townhall_interaction::{Event, EventKind, QuestionStatus, Visibility};
use townhall_packager::playlist::DateRange;
use townhall_packager::segmenter::TimedMetadata;

pub const POLL_CLASS: &str = "townhall.poll";
pub const QUESTION_CLASS: &str = "townhall.question";
pub const CHAPTER_CLASS: &str = "townhall.chapter";

/// What the in-band mapping remembers between events (rebuilt by replaying the log).
#[derive(Debug, Default)]
pub struct InBand {
    question_texts: HashMap<String, String>,
    open_polls: HashMap<String, DateRange>,
    answering: Option<DateRange>,
    chapter: Option<DateRange>,
}

impl InBand {
    /// The date ranges `event` opens, completes or closes, as they must now be listed.
    pub fn date_ranges(&mut self, event: &Event) -> Vec<DateRange> {
        let at = event.at.as_millis() as i64;
        match &event.kind {
            EventKind::QuestionAsked { id, text } => {
                self.question_texts.insert(id.clone(), text.clone());
                Vec::new()
            }
            EventKind::QuestionStatus { question, status } => {
                let mut ranges = Vec::new();
                let ends_open_range = self.answering.as_ref().is_some_and(|r| {
                    *status == QuestionStatus::Answering || attribute(r, "QUESTION-ID") == Some(question.as_str())
                });
                if ends_open_range && let Some(mut open) = self.answering.take() {
                    let finished = if attribute(&open, "QUESTION-ID") == Some(question.as_str()) {
                        status.as_str()
                    } else {
                        QuestionStatus::Open.as_str()
                    };
                    open.end_ms = Some(at.max(open.start_ms));
                    open.attributes.push(("STATUS".into(), finished.into()));
                    ranges.push(open);
                }
                if *status == QuestionStatus::Answering {
                    let text = self.question_texts.get(question).cloned().unwrap_or_default();
                    let range = DateRange {
                        id: format!("question-{question}-{}", event.seq),
                        class: Some(QUESTION_CLASS.into()),
                        start_ms: at,
                        end_ms: None,
                        attributes: vec![("QUESTION-ID".into(), question.clone()), ("TEXT".into(), encode(&text))],
                    };
                    self.answering = Some(range.clone());
                    ranges.push(range);
                }
                ranges
            }
            EventKind::PollOpened { id, question, options, multiple, allow_change } => {
                let range = DateRange {
                    id: format!("poll-{id}"),
                    class: Some(POLL_CLASS.into()),
                    start_ms: at,
                    end_ms: None,
                    attributes: vec![
                        ("QUESTION".into(), encode(question)),
                        ("OPTIONS".into(), encode(&serde_json::to_string(options).unwrap_or_default())),
                        ("MULTIPLE".into(), yes_no(*multiple)),
                        ("ALLOW-CHANGE".into(), yes_no(*allow_change)),
                    ],
                };
                self.open_polls.insert(id.clone(), range.clone());
                vec![range]
            }
            EventKind::PollClosed { poll, counts, voters } => {
                let Some(mut range) = self.open_polls.remove(poll) else {
                    return Vec::new();
                };
                range.end_ms = Some(at.max(range.start_ms));
                range.attributes.push(("RESULTS".into(), encode(&serde_json::to_string(counts).unwrap_or_default())));
                range.attributes.push(("VOTERS".into(), voters.to_string()));
                vec![range]
            }
            EventKind::ChapterStarted { id, title } => {
                let mut ranges = Vec::new();
                if let Some(mut previous) = self.chapter.take() {
                    previous.end_ms = Some(at.max(previous.start_ms));
                    ranges.push(previous);
                }
                let range = DateRange {
                    id: format!("chapter-{id}"),
                    class: Some(CHAPTER_CLASS.into()),
                    start_ms: at,
                    end_ms: None,
                    attributes: vec![("TITLE".into(), encode(title))],
                };
                self.chapter = Some(range.clone());
                ranges.push(range);
                ranges
            }
            _ => Vec::new(),
        }
    }
}

fn yes_no(value: bool) -> String {
    if value { "YES" } else { "NO" }.into()
}

/// Percent-encodes a text value for a quoted-string attribute.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn attribute<'a>(range: &'a DateRange, name: &str) -> Option<&'a str> {
    range.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The event as timed metadata for the program's parts, if every attendee may see it.
pub fn timed_metadata(event: &Event, json: &str) -> Option<TimedMetadata> {
    if event.kind.audience() != Visibility::Everyone {
        return None;
    }
    // The emsg id is 32 bits; the full seq is in the JSON.
    TimedMetadata::event(event.seq as u32, event.at.as_millis() as i64, None, json).ok()
}

#[cfg(test)]
mod tests {
    use townhall_interaction::{Actor, ProgramTime, Role};

    use super::*;

    fn event(seq: u64, at: u64, kind: EventKind) -> Event {
        Event { seq, at: ProgramTime(at), ts: at, actor: Actor::new("host", "Host", Role::Host), nonce: None, kind }
    }

    #[test]
    fn a_poll_is_a_range_from_open_to_close_with_its_results() {
        let mut inband = InBand::default();
        let opened = EventKind::PollOpened {
            id: "p1".into(),
            question: "Tea or coffee?".into(),
            options: vec!["Tea".into(), "Coffee".into()],
            multiple: false,
            allow_change: true,
        };
        let [open] = inband.date_ranges(&event(1, 1_000, opened)).try_into().unwrap();
        assert_eq!((open.id.as_str(), open.start_ms, open.end_ms), ("poll-p1", 1_000, None));
        assert_eq!(attribute(&open, "OPTIONS"), Some("%5B%22Tea%22%2C%22Coffee%22%5D"));
        let closed = EventKind::PollClosed { poll: "p1".into(), counts: vec![3, 4], voters: 7 };
        let [close] = inband.date_ranges(&event(9, 5_000, closed)).try_into().unwrap();
        assert_eq!((&close.id, close.start_ms, close.end_ms), (&open.id, 1_000, Some(5_000)));
        assert_eq!(&close.attributes[..4], &open.attributes[..], "the attributes it had stay the same");
        assert_eq!((attribute(&open, "MULTIPLE"), attribute(&open, "ALLOW-CHANGE")), (Some("NO"), Some("YES")));
        assert_eq!(attribute(&close, "RESULTS"), Some("%5B3%2C4%5D"));
        // A poll closed twice (or never opened) lists nothing more.
        let again = EventKind::PollClosed { poll: "p1".into(), counts: vec![3, 4], voters: 7 };
        assert!(inband.date_ranges(&event(10, 6_000, again)).is_empty());
    }

    #[test]
    fn the_question_being_answered_spans_until_its_next_status() {
        let mut inband = InBand::default();
        let asked = |id: &str| EventKind::QuestionAsked { id: id.into(), text: format!("why {id}?") };
        let mark = |id: &str, status| EventKind::QuestionStatus { question: id.into(), status };
        assert!(inband.date_ranges(&event(1, 100, asked("q1"))).is_empty());
        inband.date_ranges(&event(2, 150, asked("q2")));
        let [q1] = inband.date_ranges(&event(3, 200, mark("q1", QuestionStatus::Answering))).try_into().unwrap();
        assert_eq!((q1.id.as_str(), attribute(&q1, "TEXT")), ("question-q1-3", Some("why%20q1%3F")));
        // Answering another question ends the first (back to open) and starts the second.
        let [q1_end, q2] =
            inband.date_ranges(&event(4, 300, mark("q2", QuestionStatus::Answering))).try_into().unwrap();
        assert_eq!((q1_end.end_ms, attribute(&q1_end, "STATUS")), (Some(300), Some("open")));
        assert_eq!(q2.id, "question-q2-4");
        // Another question's status does not touch the open range.
        assert!(inband.date_ranges(&event(5, 350, mark("q1", QuestionStatus::Dismissed))).is_empty());
        let [q2_end] = inband.date_ranges(&event(6, 400, mark("q2", QuestionStatus::Answered))).try_into().unwrap();
        assert_eq!((q2_end.end_ms, attribute(&q2_end, "STATUS")), (Some(400), Some("answered")));
    }

    #[test]
    fn chapters_follow_each_other() {
        let mut inband = InBand::default();
        let chapter = |id: &str, title: &str| EventKind::ChapterStarted { id: id.into(), title: title.into() };
        let [intro] = inband.date_ranges(&event(1, 0, chapter("c1", "Intro"))).try_into().unwrap();
        assert_eq!((intro.class.as_deref(), intro.end_ms), (Some(CHAPTER_CLASS), None));
        let [intro_end, demo] = inband.date_ranges(&event(2, 60_000, chapter("c2", "Demo"))).try_into().unwrap();
        assert_eq!((intro_end.id.as_str(), intro_end.end_ms), ("chapter-c1", Some(60_000)));
        assert_eq!(attribute(&demo, "TITLE"), Some("Demo"));
    }

    #[test]
    fn text_values_survive_a_quoted_string() {
        assert_eq!(encode("Tea \"or\"\ncoffée?"), "Tea%20%22or%22%0Acoff%C3%A9e%3F");
        assert_eq!(encode("a-z_0.9~"), "a-z_0.9~");
    }

    #[test]
    fn only_what_attendees_may_see_goes_into_the_media() {
        let public =
            event(7, 1_000, EventKind::ChatMessage { id: 7, text: "hi".into(), visibility: Visibility::Everyone });
        assert!(timed_metadata(&public, "{}").is_some());
        let private =
            event(8, 1_000, EventKind::ChatMessage { id: 8, text: "psst".into(), visibility: Visibility::Moderators });
        assert!(timed_metadata(&private, "{}").is_none());
        assert!(timed_metadata(&event(9, 1_000, EventKind::HandRaised), "{}").is_none());
    }
}
