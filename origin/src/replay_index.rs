//! The durable record of a room's replay, kept beside its segments in the replay directory:
//! `replay.jsonl`, one JSON line per segment once the segment file is on disk, and one line
//! when the event ends. At start-up the replay playlist is rebuilt from it, and the program
//! continues after its last segment with a discontinuity (RFC 8216bis §6.2.1, §6.2.2: a media
//! sequence number is never reused for other media).
//!
//! Decided here:
//! - Append-only, one `write` per line, then `fdatasync`: a crash loses at most the line being
//!   written, and a torn last line (no newline) is ignored when the file is read back.
//! - Segments are listed in the order they were written; a line whose segment file is missing
//!   (deleted by hand) is left out of the rebuilt replay rather than naming a file that is not
//!   there.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use townhall_packager::playlist::MediaPlaylist;
use townhall_packager::segmenter::SegmentReady;

/// The file's name inside a replay directory.
pub const FILE_NAME: &str = "replay.jsonl";

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplayEntry {
    /// `seg-{msn}.m4s` is on disk.
    Segment {
        msn: u64,
        /// Program time of its first frame (ms since the Unix epoch).
        program_time_ms: i64,
        discontinuity: bool,
        /// Its init section, `init-{init_id}.mp4`.
        init_id: u32,
        duration_s: f64,
    },
    /// The event ended: the replay is VOD.
    Ended,
    /// The replay before this line was removed (retention): numbering goes on after it, so
    /// no media sequence number or init section id is ever used twice (CDNs keep media
    /// objects for a year).
    Retired { next_msn: u64, last_init_id: u32 },
}

impl ReplayEntry {
    /// The line of a segment the segmenter closed.
    pub fn segment(segment: &SegmentReady) -> Self {
        ReplayEntry::Segment {
            msn: segment.msn,
            program_time_ms: segment.program_time_ms,
            discontinuity: segment.discontinuity,
            init_id: segment.init_id,
            duration_s: segment.duration_s,
        }
    }
}

/// The index of one replay directory.
#[derive(Debug, Clone)]
pub struct ReplayIndex {
    dir: PathBuf,
}

impl ReplayIndex {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the replay (retention): its segments, init sections and playlist go, and the
    /// index keeps only where numbering goes on (and whether the event had ended). Blocking.
    pub fn retire(&self, next_msn: u64, last_init_id: u32, ended: bool) -> io::Result<()> {
        let mut lines = vec![ReplayEntry::Retired { next_msn, last_init_id }];
        if ended {
            lines.push(ReplayEntry::Ended);
        }
        let mut text = Vec::new();
        for line in &lines {
            text.extend(serde_json::to_vec(line).map_err(io::Error::other)?);
            text.push(b'\n');
        }
        let path = self.dir.join(FILE_NAME);
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let media = (name.starts_with("seg-") && name.ends_with(".m4s"))
                || (name.starts_with("init-") && name.ends_with(".mp4"))
                || name == "replay.m3u8"
                // The pusher's position in the old index means nothing in the new one.
                || name == "push.cursor";
            if media {
                std::fs::remove_file(self.dir.join(name.as_ref()))?;
            }
        }
        Ok(())
    }

    /// Appends one entry and waits until it is on disk. Blocking: call it off the runtime.
    pub fn append(&self, entry: &ReplayEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(FILE_NAME))?;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Reads the entries back (none if there is no index yet). A torn last line (a crash in
    /// the middle of a write) is cut off the file, so the next append starts a clean line;
    /// other lines that do not parse are skipped; segments whose file is gone are left out.
    /// Blocking.
    pub fn read(&self) -> io::Result<Vec<ReplayEntry>> {
        let path = self.dir.join(FILE_NAME);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            tracing::warn!(dir = %self.dir.display(), bytes = text.len() - complete, "torn replay index line cut off");
            std::fs::OpenOptions::new().write(true).open(&path)?.set_len(complete as u64)?;
        }
        let mut entries = Vec::new();
        for line in text[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<ReplayEntry>(line) {
                Ok(entry @ ReplayEntry::Segment { msn, .. }) => {
                    if self.dir.join(format!("seg-{msn}.m4s")).is_file() {
                        entries.push(entry);
                    } else {
                        tracing::warn!(dir = %self.dir.display(), msn, "replay segment missing on disk: left out");
                    }
                }
                Ok(entry) => entries.push(entry),
                Err(err) => tracing::warn!(dir = %self.dir.display(), %err, "unreadable replay index line skipped"),
            }
        }
        Ok(entries)
    }
}

/// Lists the segments of `entries` in `playlist`, in order, and ends it if the event ended. A
/// number that does not increase is skipped: no number is ever listed twice.
pub fn fill_playlist(playlist: &mut MediaPlaylist, entries: &[ReplayEntry]) {
    let mut next_msn = 0;
    for entry in entries {
        match *entry {
            ReplayEntry::Retired { next_msn: after, .. } => next_msn = next_msn.max(after),
            ReplayEntry::Segment { msn, program_time_ms, discontinuity, init_id, duration_s } if msn >= next_msn => {
                playlist.start_segment(msn, program_time_ms, discontinuity, init_id);
                playlist.close_segment(msn, duration_s);
                next_msn = msn + 1;
            }
            ReplayEntry::Segment { .. } => {}
            ReplayEntry::Ended => playlist.end(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(msn: u64) -> ReplayEntry {
        ReplayEntry::Segment {
            msn,
            program_time_ms: 1_700_000_000_000 + msn as i64 * 2000,
            discontinuity: msn == 3,
            init_id: 1,
            duration_s: 2.0,
        }
    }

    #[test]
    fn entries_come_back_in_order_and_a_torn_line_or_a_missing_segment_is_skipped() {
        let dir = std::env::temp_dir().join(format!("townhall-replay-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let index = ReplayIndex::new(&dir);
        assert_eq!(index.read().unwrap(), vec![]);
        for msn in 0..4 {
            if msn != 2 {
                std::fs::write(dir.join(format!("seg-{msn}.m4s")), b"x").unwrap();
            }
            index.append(&segment(msn)).unwrap();
        }
        index.append(&ReplayEntry::Ended).unwrap();
        // A crash in the middle of a line.
        let mut file = std::fs::OpenOptions::new().append(true).open(dir.join(FILE_NAME)).unwrap();
        file.write_all(br#"{"kind":"segment","msn":4,"progr"#).unwrap();
        drop(file);
        let expected = vec![segment(0), segment(1), segment(3), ReplayEntry::Ended];
        assert_eq!(index.read().unwrap(), expected);
        // The torn line was cut off: what is appended next reads back.
        index.append(&ReplayEntry::Ended).unwrap();
        assert_eq!(index.read().unwrap().len(), expected.len() + 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
