//! Chapters: the program's table of contents, marked live by moderators.
//!
//! Rules: a moderator starts a chapter with a title, trimmed, of 1 to [`TITLE_MAX_CHARS`]
//! characters; it begins at its event's `at` and ends where the next one begins (the last one is
//! open-ended). Everyone sees chapters. Chapter ids are `c1, c2, …`. There is no "end chapter"
//! command: a chapter runs until the next one or the end of the program.

use serde::Serialize;

use crate::actor::Actor;
use crate::clock::ProgramTime;
use crate::error::{InteractionError, Result};
use crate::event::{Event, EventKind};
use crate::text;

/// Longest chapter title, in characters.
pub const TITLE_MAX_CHARS: usize = 120;

/// One chapter as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChapterView {
    pub id: String,
    pub title: String,
    /// Program time it starts at: its `chapter_started` event's `at`.
    pub at: ProgramTime,
    /// Program time the next chapter starts at; `null` for the current (last) one.
    pub end_at: Option<ProgramTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chapter {
    id: String,
    title: String,
    at: ProgramTime,
}

/// A room's chapters, in the order started (so by `at`: the log keeps `at` non-decreasing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chapters {
    chapters: Vec<Chapter>,
}

impl Chapters {
    pub(crate) fn start(&self, actor: &Actor, title: &str) -> Result<EventKind> {
        if !actor.role.is_moderator() {
            return Err(InteractionError::NotAllowed { action: "chapter_start" });
        }
        let title = text::clean("title", title, TITLE_MAX_CHARS)?;
        Ok(EventKind::ChapterStarted { id: format!("c{}", self.chapters.len() + 1), title })
    }

    pub(crate) fn apply(&mut self, event: &Event) {
        if let EventKind::ChapterStarted { id, title } = &event.kind {
            self.chapters.push(Chapter { id: id.clone(), title: title.clone(), at: event.at });
        }
    }

    /// Every chapter, first first, each ending where the next begins.
    pub fn list(&self) -> Vec<ChapterView> {
        self.chapters
            .iter()
            .enumerate()
            .map(|(i, c)| ChapterView {
                id: c.id.clone(),
                title: c.title.clone(),
                at: c.at,
                end_at: self.chapters.get(i + 1).map(|next| next.at),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::testutil::*;

    fn start(title: &str) -> Command {
        Command::ChapterStart { title: title.into() }
    }

    #[test]
    fn reads_and_writes_the_documented_shape() {
        let r = crate::Request::from_json(r#"{"type":"chapter_start","title":"Intro"}"#).expect("parses");
        assert_eq!(r.command, start("Intro"));
        assert_eq!(r.command.type_name(), "chapter_start");
        let mut room = room();
        let events = room.exec(&host(), start("  Intro "), T0, AT0).expect("started");
        let v = serde_json::to_value(&events[0]).expect("serializes");
        assert_eq!(
            (v["type"].as_str(), v["id"].as_str(), v["title"].as_str()),
            (Some("chapter_started"), Some("c1"), Some("Intro"))
        );
        assert_eq!(v["at"], AT0.0);
        let view = serde_json::to_value(room.chapters()).expect("serializes");
        assert_eq!(view, serde_json::json!([{"id":"c1","title":"Intro","at":AT0.0,"end_at":null}]));
    }

    #[test]
    fn each_chapter_ends_where_the_next_begins() {
        let mut room = room();
        room.exec(&host(), start("Intro"), T0, ProgramTime(1_000)).expect("started");
        room.exec(&presenter(), start("Demo"), T0 + 60_000, ProgramTime(61_000)).expect("started");
        // A program time behind the last event is raised to it: chapters never overlap.
        room.exec(&host(), start("Q&A"), T0 + 90_000, ProgramTime(50_000)).expect("started");
        let chapters = room.chapters();
        let got: Vec<_> =
            chapters.iter().map(|c| (c.id.as_str(), c.title.as_str(), c.at.0, c.end_at.map(|t| t.0))).collect();
        assert_eq!(
            got,
            [("c1", "Intro", 1_000, Some(61_000)), ("c2", "Demo", 61_000, Some(61_000)), ("c3", "Q&A", 61_000, None)]
        );
        // Everyone sees them, in their snapshot too.
        assert_eq!(room.snapshot(&attendee("a")).chapters, chapters);
        assert_eq!(room.snapshot(&host()).chapters, chapters);
    }

    #[test]
    fn titles_are_checked_and_attendees_may_not_start_chapters() {
        let mut room = room();
        assert_eq!(room.exec(&host(), start(" \n "), T0, AT0), Err(InteractionError::Empty { field: "title" }));
        let long = "é".repeat(121);
        assert_eq!(
            room.exec(&host(), start(&long), T0, AT0),
            Err(InteractionError::TooLong { field: "title", len: 121, max: 120 })
        );
        let e = room.exec(&attendee("a"), start("Mine"), T0, AT0).expect_err("attendee");
        assert_eq!((e.code(), e.status()), ("not_allowed", 403));
        assert_eq!(room.last_seq(), 0);
        room.exec(&host(), start(&"é".repeat(120)), T0, AT0).expect("120 characters fit");
        assert_eq!(room.chapters().len(), 1);
    }
}
