//! The LL-HLS media playlist as one model, rendered to text, never patched
//! (RFC 8216bis-17: §4.4.3 media playlist tags, §4.4.4.9 EXT-X-PART, §4.4.5.2
//! EXT-X-PRELOAD-HINT, §4.4.3.8 EXT-X-SERVER-CONTROL, §4.4.5.2 EXT-X-SKIP, §6.2.5.1 delta
//! updates, Appendix B low-latency parameters).
//!
//! URIs are relative and the same for every viewer: `init-{id}.mp4`, `seg-{msn}.m4s`,
//! `part-{msn}.{index}.m4s`. Decided here:
//! - PART-HOLD-BACK is 3 × PART-TARGET and HOLD-BACK 3 × TARGETDURATION (the spec's minimums);
//!   CAN-SKIP-UNTIL is 6 × TARGETDURATION.
//! - EXT-X-PART lines are listed for the last three segments, the open one included
//!   (§4.4.4.9: parts older than three target durations SHOULD go; strict checkers such as
//!   hls-parser count segments).
//! - A live playlist keeps `window` complete segments; an EVENT playlist (replay) keeps all.

use std::collections::VecDeque;
use std::fmt::Write;

/// One part of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    pub index: u32,
    pub duration_s: f64,
    pub independent: bool,
}

/// One segment, complete or still being built (the last one).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub msn: u64,
    /// Sum of its parts so far; final once `complete`.
    pub duration_s: f64,
    pub program_time_ms: i64,
    pub discontinuity: bool,
    pub init_id: u32,
    pub parts: Vec<PartEntry>,
    pub complete: bool,
}

/// An `EXT-X-DATERANGE` (§4.4.5.1): a span of program time with attributes, e.g. a poll from
/// open to close. The interaction layer fills these; the playlist renders them.
#[derive(Debug, Clone, PartialEq)]
pub struct DateRange {
    /// Unique within the playlist.
    pub id: String,
    /// CLASS: the semantics shared by every range of the class (`townhall.poll`, ...).
    pub class: Option<String>,
    pub start_ms: i64,
    /// END-DATE, once known.
    pub end_ms: Option<i64>,
    /// Client attributes, rendered as `X-<NAME>="<value>"` (names upper case, `A-Z 0-9 -`).
    pub attributes: Vec<(String, String)>,
}

impl DateRange {
    fn render(&self, out: &mut String) {
        let quote = |v: &str| v.replace(['"', '\n', '\r'], "'");
        let _ = write!(out, "#EXT-X-DATERANGE:ID=\"{}\"", quote(&self.id));
        if let Some(class) = &self.class {
            let _ = write!(out, ",CLASS=\"{}\"", quote(class));
        }
        let _ = write!(out, ",START-DATE=\"{}\"", format_program_date_time(self.start_ms));
        if let Some(end) = self.end_ms {
            let _ = write!(out, ",END-DATE=\"{}\"", format_program_date_time(end));
            let _ = write!(out, ",DURATION={:.3}", (end - self.start_ms).max(0) as f64 / 1000.0);
        }
        for (name, value) in &self.attributes {
            let name: String =
                name.to_ascii_uppercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            let _ = write!(out, ",X-{name}=\"{}\"", quote(value));
        }
        out.push('\n');
    }
}

/// What kind of playlist this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// Sliding window of the live edge, with parts.
    Live,
    /// `EXT-X-PLAYLIST-TYPE:EVENT`: every segment since the start (replay); becomes VOD at the end.
    Event,
}

/// How a client asked for the playlist (`_HLS_skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Skip {
    #[default]
    No,
    /// `_HLS_skip=YES`: skip old segments.
    Yes,
    /// `_HLS_skip=v2`: skip old segments and the date ranges the client already has
    /// (CAN-SKIP-DATERANGES=YES), listing the ones removed since (RECENTLY-REMOVED-DATERANGES).
    V2,
}

/// The playlist model.
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    pub kind: PlaylistKind,
    pub part_target_s: f64,
    /// Configured segment target in seconds; TARGETDURATION is at least its ceiling.
    pub segment_target_s: f64,
    /// Complete segments kept for a live playlist.
    pub window: usize,
    segments: VecDeque<SegmentEntry>,
    discontinuity_sequence: u64,
    longest_segment_s: f64,
    ended: bool,
    /// Each range with the media sequence number that was newest when it last changed.
    date_ranges: Vec<(DateRange, u64)>,
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of a count of days since
/// 1970-01-01 (H. Hinnant's civil-from-days algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Formats Unix milliseconds as RFC 3339 (`2026-11-24T22:51:00.123Z`).
pub fn format_program_date_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl MediaPlaylist {
    pub fn new(kind: PlaylistKind, part_target_s: f64, segment_target_s: f64, window: usize) -> Self {
        Self {
            kind,
            part_target_s,
            segment_target_s,
            window: window.max(3),
            segments: VecDeque::new(),
            discontinuity_sequence: 0,
            longest_segment_s: 0.0,
            ended: false,
            date_ranges: Vec::new(),
        }
    }

    /// Adds a date range, or replaces the one with the same ID (to set its END-DATE or update
    /// its attributes).
    pub fn upsert_date_range(&mut self, range: DateRange) {
        let changed_msn = self.segments.back().map(|s| s.msn).unwrap_or(0);
        match self.date_ranges.iter_mut().find(|(r, _)| r.id == range.id) {
            Some(existing) => *existing = (range, changed_msn),
            None => self.date_ranges.push((range, changed_msn)),
        }
    }

    /// Sets EXT-X-DISCONTINUITY-SEQUENCE for a playlist that continues an earlier one (a
    /// program resumed after a restart, whose first segment is a discontinuity).
    pub fn set_discontinuity_sequence(&mut self, sequence: u64) {
        self.discontinuity_sequence = sequence;
    }

    /// TARGETDURATION: the longest segment, rounded (§4.4.3.1), and at least the target.
    pub fn target_duration(&self) -> u64 {
        let longest = self.longest_segment_s.round() as u64;
        longest.max(self.segment_target_s.ceil() as u64).max(1)
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn segments(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments.iter()
    }

    /// The newest complete segment's number.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments.iter().rev().find(|s| s.complete).map(|s| s.msn)
    }

    /// A new segment begins (it becomes the open one).
    pub fn start_segment(&mut self, msn: u64, program_time_ms: i64, discontinuity: bool, init_id: u32) {
        self.segments.push_back(SegmentEntry {
            msn,
            duration_s: 0.0,
            program_time_ms,
            discontinuity,
            init_id,
            parts: Vec::new(),
            complete: false,
        });
    }

    /// A part of the open segment `msn` is ready.
    pub fn add_part(&mut self, msn: u64, part: PartEntry) {
        if let Some(segment) = self.segments.iter_mut().rev().find(|s| s.msn == msn && !s.complete) {
            segment.duration_s += part.duration_s;
            segment.parts.push(part);
        }
    }

    /// Segment `msn` is complete; a live playlist drops what falls out of its window.
    pub fn close_segment(&mut self, msn: u64, duration_s: f64) {
        if let Some(segment) = self.segments.iter_mut().rev().find(|s| s.msn == msn) {
            segment.duration_s = duration_s;
            segment.complete = true;
            self.longest_segment_s = self.longest_segment_s.max(duration_s);
        }
        if self.kind == PlaylistKind::Live {
            while self.segments.iter().filter(|s| s.complete).count() > self.window {
                if let Some(old) = self.segments.pop_front()
                    && let Some(next) = self.segments.front()
                    && next.discontinuity
                {
                    let _ = old;
                    self.discontinuity_sequence += 1;
                }
            }
        }
    }

    /// The program ended: the open segment (if it has parts) was closed by the caller; an
    /// empty open segment is dropped; ENDLIST follows.
    pub fn end(&mut self) {
        self.segments.retain(|s| s.complete);
        self.ended = true;
    }

    /// Whether `(msn, part)` is in the playlist (§6.2.5.2: a blocking request waits for this).
    /// `part: None` asks for the whole segment.
    pub fn has(&self, msn: u64, part: Option<u32>) -> bool {
        if self.ended {
            return true;
        }
        match part {
            None => self.segments.iter().any(|s| s.complete && s.msn >= msn),
            Some(index) => self
                .segments
                .iter()
                .any(|s| s.msn > msn || (s.msn == msn && (s.complete || s.parts.iter().any(|p| p.index >= index)))),
        }
    }

    /// The next part to come, as (msn, index): what the PRELOAD-HINT names.
    pub fn next_part(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        let last = self.segments.back()?;
        Some(if last.complete { (last.msn + 1, 0) } else { (last.msn, last.parts.len() as u32) })
    }

    /// The media sequence number a client may ask for next, and how far ahead it may block:
    /// (last msn in the playlist, index of its last part).
    pub fn edge(&self) -> Option<(u64, Option<u32>)> {
        let last = self.segments.back()?;
        Some((last.msn, last.parts.len().checked_sub(1).map(|i| i as u32)))
    }

    /// Renders the playlist.
    pub fn render(&self, skip: Skip) -> String {
        let mut out = String::with_capacity(4096);
        let td = self.target_duration();
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:9");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{td}");
        if self.kind == PlaylistKind::Event {
            let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{}", if self.ended { "VOD" } else { "EVENT" });
        }
        let live = self.kind == PlaylistKind::Live && !self.ended;
        let can_skip_until = 6 * td;
        if live {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={can_skip_until}.0,CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK={:.3},HOLD-BACK={}.0",
                3.0 * self.part_target_s,
                3 * td
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", self.part_target_s);
        }
        let first_msn = self.segments.front().map(|s| s.msn).unwrap_or(0);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
        // §6.2.5.1: skip the complete segments that end more than CAN-SKIP-UNTIL before the end.
        let total: f64 = self.segments.iter().map(|s| s.duration_s).sum();
        let mut skipped = 0;
        if live && skip != Skip::No {
            let mut start = 0.0;
            for segment in &self.segments {
                let end = start + segment.duration_s;
                if !segment.complete || total - end < can_skip_until as f64 {
                    break;
                }
                skipped += 1;
                start = end;
            }
        }
        let window_start = match self.kind {
            PlaylistKind::Live => self.segments.front().map(|s| s.program_time_ms),
            PlaylistKind::Event => None,
        };
        // A range that ended before the live window is gone from the playlist.
        let removed = |range: &DateRange| window_start.is_some_and(|start| range.end_ms.is_some_and(|end| end < start));
        let skip_ranges = skip == Skip::V2 && skipped > 0;
        if skipped > 0 {
            let _ = write!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            if skip_ranges {
                // Removed within the last CAN-SKIP-UNTIL: a client may still hold them.
                let recent_from = window_start.unwrap_or(0) - (can_skip_until as i64) * 1000;
                let ids: Vec<&str> = self
                    .date_ranges
                    .iter()
                    .filter(|(r, _)| removed(r) && r.end_ms.is_some_and(|end| end >= recent_from))
                    .map(|(r, _)| r.id.as_str())
                    .collect();
                let _ = write!(out, ",RECENTLY-REMOVED-DATERANGES=\"{}\"", ids.join("\t"));
            }
            out.push('\n');
        }
        // Date ranges still in the playlist; a v2 delta leaves out those unchanged since before
        // the skip boundary (the client has them).
        let boundary_msn = self.segments.get(skipped).map(|s| s.msn).unwrap_or(0);
        for (range, changed_msn) in &self.date_ranges {
            if removed(range) || (skip_ranges && *changed_msn < boundary_msn) {
                continue;
            }
            range.render(&mut out);
        }

        // Parts are listed for the last three segments; a PRELOAD-HINT of a segment not begun
        // yet counts as one (clients attach it to a segment of its own).
        let hint_only_segment = live && self.segments.back().is_some_and(|s| s.complete);
        let parts_from = (self.segments.len() + usize::from(hint_only_segment)).saturating_sub(3);
        let mut elapsed = 0.0;
        let mut current_init = None;
        for (i, segment) in self.segments.iter().enumerate() {
            let ends_at = elapsed + segment.duration_s;
            elapsed = ends_at;
            if i < skipped {
                continue;
            }
            if segment.discontinuity && i > 0 {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if current_init != Some(segment.init_id) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", segment.init_id);
                current_init = Some(segment.init_id);
            }
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_program_date_time(segment.program_time_ms));
            if live && i >= parts_from {
                for part in &segment.parts {
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"part-{}.{}.m4s\"{}",
                        part.duration_s,
                        segment.msn,
                        part.index,
                        if part.independent { ",INDEPENDENT=YES" } else { "" }
                    );
                }
            }
            if segment.complete {
                let _ = writeln!(out, "#EXTINF:{:.5},", segment.duration_s);
                let _ = writeln!(out, "seg-{}.m4s", segment.msn);
            }
        }
        if live && let Some((msn, index)) = self.next_part() {
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-{msn}.{index}.m4s\"");
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_555_860_000; // 2026-11-24T21:31:00.000Z

    fn part(index: u32, independent: bool) -> PartEntry {
        PartEntry { index, duration_s: 0.2, independent }
    }

    /// `complete` full segments of 10 parts, then an open one with `open_parts` parts.
    fn playlist(kind: PlaylistKind, complete: u64, open_parts: u32) -> MediaPlaylist {
        let mut p = MediaPlaylist::new(kind, 0.2, 2.0, 6);
        for msn in 0..=complete {
            p.start_segment(msn, T0 + msn as i64 * 2000, false, 1);
            let parts = if msn < complete { 10 } else { open_parts };
            for i in 0..parts {
                p.add_part(msn, part(i, i == 0));
            }
            if msn < complete {
                p.close_segment(msn, 2.0);
            }
        }
        p
    }

    #[test]
    fn program_date_times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_program_date_time(T0), "2026-11-24T21:31:00.000Z");
        assert_eq!(format_program_date_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_program_date_time(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn renders_a_live_low_latency_playlist_exactly() {
        let p = playlist(PlaylistKind::Live, 2, 2);
        let parts = |msn: u64, n: u32| -> String {
            (0..n)
                .map(|i| {
                    let independent = if i == 0 { ",INDEPENDENT=YES" } else { "" };
                    format!("#EXT-X-PART:DURATION=0.20000,URI=\"part-{msn}.{i}.m4s\"{independent}\n")
                })
                .collect()
        };
        let expected = String::from(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=0.600,HOLD-BACK=6.0\n\
             #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-24T21:31:00.000Z\n",
        ) + &parts(0, 10)
            + "#EXTINF:2.00000,\nseg-0.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T21:31:02.000Z\n"
            + &parts(1, 10)
            + "#EXTINF:2.00000,\nseg-1.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T21:31:04.000Z\n"
            + &parts(2, 2)
            + "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.2.m4s\"\n";
        assert_eq!(p.render(Skip::No), expected);
    }

    #[test]
    fn the_window_slides_and_delta_updates_skip_old_segments() {
        let p = playlist(PlaylistKind::Live, 12, 1);
        let full = p.render(Skip::No);
        assert!(full.contains("#EXT-X-MEDIA-SEQUENCE:6\n"), "{full}");
        assert_eq!(full.matches("#EXTINF").count(), 6);
        // Parts only for the last three segments (the open one included).
        assert!(
            !full.contains("part-9.") && full.contains("part-10.0.m4s") && full.contains("part-12.0.m4s"),
            "{full}"
        );
        // 6 complete segments (12 s) + 0.2 s open: none ends 12 s or more before the end.
        assert!(!p.render(Skip::Yes).contains("EXT-X-SKIP"));
        let mut long = MediaPlaylist::new(PlaylistKind::Live, 0.2, 2.0, 10);
        for msn in 0..10 {
            long.start_segment(msn, T0, false, 1);
            long.add_part(msn, part(0, true));
            long.close_segment(msn, 2.0);
        }
        let delta = long.render(Skip::Yes);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{delta}");
        assert_eq!(delta.matches("#EXTINF").count(), 6);
        assert!(delta.contains("#EXT-X-MAP:URI=\"init-1.mp4\""));
    }

    #[test]
    fn a_hint_for_the_next_segment_counts_as_one_of_the_three() {
        let p = playlist(PlaylistKind::Live, 4, 0);
        let mut closed = p.clone();
        closed.segments.pop_back(); // segment 3 closed, segment 4 not begun
        let text = closed.render(Skip::No);
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-4.0.m4s\""), "{text}");
        assert!(!text.contains("part-1.") && text.contains("part-2.0") && text.contains("part-3.9"), "{text}");
    }

    #[test]
    fn date_ranges_are_rendered_and_leave_with_the_window() {
        let mut p = playlist(PlaylistKind::Live, 8, 1);
        p.upsert_date_range(DateRange {
            id: "poll-1".into(),
            class: Some("townhall.poll".into()),
            start_ms: T0 + 500,
            end_ms: None,
            attributes: vec![("question".into(), "Lunch?".into())],
        });
        let text = p.render(Skip::No);
        assert!(text.contains("#EXT-X-DATERANGE:ID=\"poll-1\",CLASS=\"townhall.poll\",START-DATE=\"2026-11-24T21:31:00.500Z\",X-QUESTION=\"Lunch?\"\n"), "{text}");
        p.upsert_date_range(DateRange {
            id: "poll-1".into(),
            class: Some("townhall.poll".into()),
            start_ms: T0 + 500,
            end_ms: Some(T0 + 1500),
            attributes: vec![("results".into(), "yes=3,no=\"1\"".into())],
        });
        // Ended before the live window starts (segment 3, T0 + 6 s): gone from the live playlist.
        assert!(!p.render(Skip::No).contains("EXT-X-DATERANGE"));
        let mut replay = MediaPlaylist::new(PlaylistKind::Event, 0.2, 2.0, 3);
        replay.start_segment(0, T0, false, 1);
        replay.close_segment(0, 2.0);
        replay.upsert_date_range(p.date_ranges[0].0.clone());
        let text = replay.render(Skip::No);
        assert!(
            text.contains("END-DATE=\"2026-11-24T21:31:01.500Z\",DURATION=1.000,X-RESULTS=\"yes=3,no='1'\""),
            "{text}"
        );
    }

    #[test]
    fn v2_delta_updates_skip_known_date_ranges_and_list_removed_ones() {
        let range = |id: &str, start: i64, end: Option<i64>| DateRange {
            id: id.into(),
            class: Some("townhall.chapter".into()),
            start_ms: start,
            end_ms: end,
            attributes: vec![],
        };
        let mut p = MediaPlaylist::new(PlaylistKind::Live, 0.2, 2.0, 10);
        for msn in 0..14u64 {
            p.start_segment(msn, T0 + msn as i64 * 2000, false, 1);
            p.add_part(msn, part(0, true));
            p.close_segment(msn, 2.0);
            match msn {
                1 => p.upsert_date_range(range("gone", T0 + 2000, Some(T0 + 3000))),
                5 => p.upsert_date_range(range("old", T0 + 10_000, None)),
                6 => p.upsert_date_range(range("updated", T0 + 12_000, None)),
                12 => p.upsert_date_range(range("updated", T0 + 12_000, Some(T0 + 25_000))),
                _ => {}
            }
        }
        // Window: segments 4..=13 (20 s); segments ending 12 s or more before the end are skipped: 4 of them.
        let delta = p.render(Skip::V2);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4,RECENTLY-REMOVED-DATERANGES=\"gone\"\n"), "{delta}");
        assert!(!delta.contains("ID=\"old\""), "unchanged since before the boundary: skipped\n{delta}");
        assert!(delta.contains("ID=\"updated\"") && delta.contains("END-DATE"), "changed after it: sent\n{delta}");
        let plain_delta = p.render(Skip::Yes);
        assert!(plain_delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n") && plain_delta.contains("ID=\"old\""));
        assert!(!p.render(Skip::No).contains("ID=\"gone\""));
    }

    #[test]
    fn blocking_conditions_follow_parts_and_segments() {
        let p = playlist(PlaylistKind::Live, 2, 2);
        assert!(p.has(1, None) && !p.has(2, None));
        assert!(p.has(2, Some(1)) && !p.has(2, Some(2)) && !p.has(3, Some(0)));
        assert_eq!(p.next_part(), Some((2, 2)));
        assert_eq!(p.edge(), Some((2, Some(1))));
    }

    #[test]
    fn discontinuities_new_maps_and_the_end() {
        let mut p = MediaPlaylist::new(PlaylistKind::Event, 0.2, 2.0, 3);
        p.start_segment(0, T0, false, 1);
        p.add_part(0, part(0, true));
        p.close_segment(0, 0.2);
        p.start_segment(1, T0 + 5000, true, 2);
        p.add_part(1, part(0, true));
        p.close_segment(1, 2.4);
        p.start_segment(2, T0 + 7400, false, 2);
        p.end();
        let text = p.render(Skip::No);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(text.contains("#EXT-X-TARGETDURATION:2\n"), "2.4 s rounds to 2");
        assert!(text.contains("seg-0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n"), "{text}");
        assert!(!text.contains("EXT-X-PART") && !text.contains("PRELOAD-HINT") && !text.contains("SERVER-CONTROL"));
        assert!(text.ends_with("seg-1.m4s\n#EXT-X-ENDLIST\n"), "{text}");
        assert!(p.has(99, Some(0)), "after the end nothing blocks");
    }
}
