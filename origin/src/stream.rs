//! One room's program as the origin keeps it: the live playlist (sliding window, parts), the
//! replay playlist (EVENT, then VOD), init sections, parts and segments; each playlist rendered
//! once per version ([`RenderedPlaylist`]); and the counter that blocking requests wait on: it
//! moves only when the live playlist gains what a request can wait for (a part, a complete
//! segment, the end), one wake-up per change however many wait.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;
use townhall_packager::playlist::{DateRange, MediaPlaylist, PartEntry, PlaylistKind, SegmentEntry, Skip};
use townhall_packager::segmenter::{Event, TimedMetadata};

use crate::rendered::RenderedPlaylist;
use crate::replay_index::{ReplayEntry, fill_playlist};

/// How the multivariant playlist describes the one rendition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenditionInfo {
    /// RFC 6381 codecs, e.g. `avc1.42c01f,mp4a.40.2`.
    pub codecs: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second (BANDWIDTH).
    pub bandwidth: u64,
}

#[derive(Debug)]
struct State {
    live: MediaPlaylist,
    replay: MediaPlaylist,
    rendition: Option<RenditionInfo>,
    inits: HashMap<u32, Bytes>,
    parts: BTreeMap<(u64, u32), Bytes>,
    segments: BTreeMap<u64, Bytes>,
    started: bool,
    /// Bumped on every change of the live playlist's text.
    live_version: u64,
    /// Bumped on every change of the replay playlist's text.
    replay_version: u64,
    /// The end of the newest part on the program clock, and when it was added (wall ms).
    live_edge: Option<(i64, u64)>,
    /// Timed metadata for the program to put in its next parts ([`HlsStream::push_metadata`]).
    metadata: Vec<TimedMetadata>,
    metadata_dropped: u64,
}

/// Timed metadata waiting for the program task: more is dropped (counted).
pub const MAX_WAITING_METADATA: usize = 1_000;

/// A playlist as a viewer asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistView {
    Live(Skip),
    Replay,
}

impl PlaylistView {
    fn slot(self) -> usize {
        match self {
            PlaylistView::Live(Skip::No) => 0,
            PlaylistView::Live(Skip::Yes) => 1,
            PlaylistView::Live(Skip::V2) => 2,
            PlaylistView::Replay => 3,
        }
    }
}

/// The newest rendering of each [`PlaylistView`], with the version it was rendered from.
type RenderedSlot = Mutex<Option<(u64, Arc<RenderedPlaylist>)>>;

/// A room's HLS program.
#[derive(Debug)]
pub struct HlsStream {
    pub room: String,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    /// Where replay segments are kept (written by the program task before they are listed).
    pub replay_dir: Option<PathBuf>,
    pub limits: StreamLimits,
    replay_written: tokio::sync::Notify,
    rendered: [RenderedSlot; 4],
}

/// Where a restored program continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The first media sequence number not used yet.
    pub next_msn: u64,
    /// The highest init section number used (new ones are numbered after it).
    pub last_init_id: u32,
    /// The event had ended: the replay is VOD and no program runs.
    pub ended: bool,
}

/// Limits of what a stream keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub part_target_s: f64,
    pub segment_target_s: f64,
    /// Complete segments in the live playlist (and in memory).
    pub live_window: usize,
}

impl HlsStream {
    pub fn new(room: impl Into<String>, limits: StreamLimits, replay_dir: Option<PathBuf>) -> Self {
        Self {
            room: room.into(),
            state: Mutex::new(State {
                live: MediaPlaylist::new(
                    PlaylistKind::Live,
                    limits.part_target_s,
                    limits.segment_target_s,
                    limits.live_window,
                ),
                replay: MediaPlaylist::new(
                    PlaylistKind::Event,
                    limits.part_target_s,
                    limits.segment_target_s,
                    usize::MAX,
                ),
                rendition: None,
                inits: HashMap::new(),
                parts: BTreeMap::new(),
                segments: BTreeMap::new(),
                started: false,
                live_version: 0,
                replay_version: 0,
                live_edge: None,
                metadata: Vec::new(),
                metadata_dropped: 0,
            }),
            version: watch::channel(0).0,
            replay_dir,
            limits,
            replay_written: tokio::sync::Notify::new(),
            rendered: Default::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the requests waiting for the live playlist to change.
    fn wake(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Changes to wait on: the live playlist gained a part or a complete segment, or ended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn set_rendition(&self, info: RenditionInfo) {
        self.state().rendition = Some(info);
    }

    pub fn rendition(&self) -> Option<RenditionInfo> {
        self.state().rendition.clone()
    }

    /// The replay's segments numbered `first..=last`, as listed (complete and on disk).
    pub fn replay_segments(&self, first: u64, last: u64) -> Vec<SegmentEntry> {
        self.state().replay.segments().filter(|s| s.complete && (first..=last).contains(&s.msn)).cloned().collect()
    }

    /// The newest segment of the replay.
    pub fn last_replay_msn(&self) -> Option<u64> {
        self.state().replay.last_complete_msn()
    }

    /// Whether the replay lists any segment (of this run or, restored, of an earlier one).
    pub fn has_replay(&self) -> bool {
        self.state().replay.segments().next().is_some()
    }

    /// Whether the program has started (a first segment exists).
    pub fn is_started(&self) -> bool {
        self.state().started
    }

    /// Applies one segmenter event (except `SegmentClosed` for the replay, which waits for
    /// [`segment_persisted`](Self::segment_persisted)).
    pub fn apply(&self, event: &Event) {
        let mut state = self.state();
        let wake = match event {
            Event::Init { id, data } => {
                state.inits.insert(*id, data.clone());
                return;
            }
            Event::SegmentStarted { msn, program_time_ms, discontinuity, init_id } => {
                state.live.start_segment(*msn, *program_time_ms, *discontinuity, *init_id);
                state.started = true;
                // Nothing a request waits for: an empty segment satisfies no directive.
                false
            }
            Event::Part(part) => {
                state.parts.insert((part.msn, part.index), part.data.clone());
                state.live.add_part(
                    part.msn,
                    PartEntry { index: part.index, duration_s: part.duration_s, independent: part.independent },
                );
                let edge = state
                    .live
                    .segments()
                    .last()
                    .filter(|s| s.msn == part.msn)
                    .map(|s| s.program_time_ms + (s.duration_s * 1000.0).round() as i64);
                state.live_edge = edge.map(|edge| (edge, wall_clock_ms()));
                true
            }
            Event::SegmentClosed(segment) => {
                state.segments.insert(segment.msn, segment.data.clone());
                state.live.close_segment(segment.msn, segment.duration_s);
                // Forget what fell out of the live window.
                let first = state.live.segments().next().map(|s| s.msn);
                if let Some(first) = first {
                    state.parts.retain(|(msn, _), _| *msn >= first);
                    state.segments.retain(|msn, _| *msn >= first);
                }
                true
            }
            Event::KeyframeWanted => return,
        };
        state.live_version += 1;
        drop(state);
        if wake {
            self.wake();
        }
    }

    /// A closed segment is durable: the replay playlist may list it.
    pub fn segment_persisted(&self, entry: &ReplayEntry) {
        let mut state = self.state();
        fill_playlist(&mut state.replay, std::slice::from_ref(entry));
        state.replay_version += 1;
    }

    /// Rebuilds the replay from its durable index after a restart, and prepares the live
    /// playlist to continue it: the live playlist's discontinuity sequence counts the replay's
    /// discontinuities and the one the continuation starts with. Returns where the program
    /// continues, or `None` if there was nothing to restore.
    pub fn restore(&self, entries: &[ReplayEntry]) -> Option<Resume> {
        let mut state = self.state();
        fill_playlist(&mut state.replay, entries);
        let (retired_msn, retired_init) = entries
            .iter()
            .filter_map(|e| match *e {
                ReplayEntry::Retired { next_msn, last_init_id } => Some((next_msn, last_init_id)),
                _ => None,
            })
            .next_back()
            .unzip();
        let segments: Vec<&SegmentEntry> = state.replay.segments().collect();
        if segments.is_empty() && retired_msn.is_none() {
            return None;
        }
        let resume = Resume {
            next_msn: segments.last().map(|s| s.msn + 1).into_iter().chain(retired_msn).max().unwrap_or(0),
            last_init_id: segments.iter().map(|s| s.init_id).chain(retired_init).max().unwrap_or(0),
            ended: state.replay.is_ended(),
        };
        let discontinuities = segments.iter().skip(1).filter(|s| s.discontinuity).count() as u64;
        state.live.set_discontinuity_sequence(discontinuities + 1);
        if resume.ended {
            state.live.end();
        }
        state.live_version += 1;
        state.replay_version += 1;
        drop(state);
        self.wake();
        Some(resume)
    }

    /// Wakes whoever waits in [`replay_written`](Self::replay_written): the replay's index
    /// on disk has a new line.
    pub fn notify_replay_written(&self) {
        self.replay_written.notify_one();
    }

    /// Waits until the replay's index has new lines (for the pusher).
    pub async fn replay_written(&self) {
        self.replay_written.notified().await;
    }

    /// Forgets the replay (retention removed it from disk): it lists nothing from now on; an
    /// ended event stays ended.
    pub fn clear_replay(&self) {
        let mut state = self.state();
        let ended = state.replay.is_ended();
        state.replay = MediaPlaylist::new(
            PlaylistKind::Event,
            self.limits.part_target_s,
            self.limits.segment_target_s,
            usize::MAX,
        );
        if ended {
            state.replay.end();
        }
        state.replay_version += 1;
    }

    /// The newest segment of the replay: (msn, its program time, its init section).
    pub fn last_replay_segment(&self) -> Option<(u64, i64, u32)> {
        let state = self.state();
        let last = state.replay.segments().filter(|s| s.complete).last()?;
        let init = state.replay.segments().map(|s| s.init_id).max().unwrap_or(last.init_id);
        Some((last.msn, last.program_time_ms, init))
    }

    /// The live edge on the program clock: the end of the newest part (program time, ms since
    /// the Unix epoch, as EXT-X-PROGRAM-DATE-TIME counts) and the wall-clock instant it was
    /// added (ms). `None` before the first part and after the end.
    pub fn live_edge_program_time(&self) -> Option<(i64, u64)> {
        let state = self.state();
        if state.live.is_ended() { None } else { state.live_edge }
    }

    /// Adds an EXT-X-DATERANGE to the live and the replay playlists, or updates the one with
    /// the same ID (its END-DATE, its attributes).
    pub fn upsert_date_range(&self, range: DateRange) {
        let mut state = self.state();
        state.live.upsert_date_range(range.clone());
        state.replay.upsert_date_range(range);
        state.live_version += 1;
        state.replay_version += 1;
    }

    /// Queues timed metadata for the program to carry in its next parts (ID3 in `emsg`).
    /// Beyond [`MAX_WAITING_METADATA`] waiting (no program running), the oldest is dropped.
    pub fn push_metadata(&self, metadata: TimedMetadata) {
        let mut state = self.state();
        if state.metadata.len() >= MAX_WAITING_METADATA {
            state.metadata.remove(0);
            state.metadata_dropped += 1;
        }
        state.metadata.push(metadata);
    }

    /// The timed metadata queued since the last call (for the program task).
    pub fn take_metadata(&self) -> Vec<TimedMetadata> {
        let mut state = self.state();
        if state.metadata.is_empty() { Vec::new() } else { std::mem::take(&mut state.metadata) }
    }

    /// Timed metadata dropped because no program took it in time.
    pub fn metadata_dropped(&self) -> u64 {
        self.state().metadata_dropped
    }

    /// The program ended: both playlists get ENDLIST.
    pub fn end(&self) {
        let mut state = self.state();
        state.live.end();
        state.replay.end();
        state.live_version += 1;
        state.replay_version += 1;
        drop(state);
        self.wake();
    }

    /// The playlist as `view` asks for it, rendered and gzipped once per version: the first
    /// request after a change renders it, every other gets the same bytes.
    pub fn playlist(&self, view: PlaylistView) -> Arc<RenderedPlaylist> {
        let mut slot = self.rendered[view.slot()].lock().unwrap_or_else(|e| e.into_inner());
        let (version, text) = {
            let state = self.state();
            let version = match view {
                PlaylistView::Live(_) => state.live_version,
                PlaylistView::Replay => state.replay_version,
            };
            if let Some((rendered_version, rendered)) = slot.as_ref()
                && *rendered_version == version
            {
                return rendered.clone();
            }
            let text = match view {
                PlaylistView::Live(skip) => state.live.render(skip),
                PlaylistView::Replay => state.replay.render(Skip::No),
            };
            (version, text)
        };
        // Compressed outside the stream's lock: the program goes on adding parts meanwhile.
        let rendered = Arc::new(RenderedPlaylist::new(text));
        *slot = Some((version, rendered.clone()));
        rendered
    }

    /// TARGETDURATION of the live playlist, in seconds.
    pub fn target_duration(&self) -> u64 {
        self.state().live.target_duration()
    }

    pub fn live_has(&self, msn: u64, part: Option<u32>) -> bool {
        self.state().live.has(msn, part)
    }

    pub fn live_edge(&self) -> Option<(u64, Option<u32>)> {
        self.state().live.edge()
    }

    pub fn is_ended(&self) -> bool {
        self.state().live.is_ended()
    }

    pub fn next_part(&self) -> Option<(u64, u32)> {
        self.state().live.next_part()
    }

    pub fn init(&self, id: u32) -> Option<Bytes> {
        self.state().inits.get(&id).cloned()
    }

    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        self.state().parts.get(&(msn, index)).cloned()
    }

    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.state().segments.get(&msn).cloned()
    }
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(msn: u64, discontinuity: bool, init_id: u32) -> ReplayEntry {
        ReplayEntry::Segment { msn, program_time_ms: 1_700_000_000_000, discontinuity, init_id, duration_s: 2.0 }
    }

    fn text(stream: &HlsStream, view: PlaylistView) -> String {
        String::from_utf8(stream.playlist(view).text.to_vec()).unwrap()
    }

    fn stream() -> HlsStream {
        HlsStream::new("r", StreamLimits { part_target_s: 0.2, segment_target_s: 2.0, live_window: 6 }, None)
    }

    #[test]
    fn a_restored_replay_continues_with_new_numbers_and_a_discontinuity() {
        let s = stream();
        let entries = [segment(0, false, 1), segment(1, false, 1), segment(2, true, 2), segment(1, false, 1)];
        let resume = s.restore(&entries).unwrap();
        assert_eq!(resume, Resume { next_msn: 3, last_init_id: 2, ended: false });
        let replay = text(&s, PlaylistView::Replay);
        assert_eq!(replay.matches("seg-1.m4s").count(), 1, "a number listed twice is skipped: {replay}");
        assert!(s.has_replay() && !s.is_started() && !s.is_ended());
        // The live playlist counts the replay's discontinuity and the continuation's own.
        s.apply(&Event::SegmentStarted { msn: 3, program_time_ms: 0, discontinuity: true, init_id: 3 });
        assert!(text(&s, PlaylistView::Live(Skip::No)).contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"));
    }

    #[test]
    fn an_ended_event_is_restored_as_vod_and_nothing_is_nothing() {
        let s = stream();
        let resume = s.restore(&[segment(7, false, 1), ReplayEntry::Ended]).unwrap();
        assert!(resume.ended);
        assert!(text(&s, PlaylistView::Replay).ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(stream().restore(&[ReplayEntry::Ended]), None);
    }
}
