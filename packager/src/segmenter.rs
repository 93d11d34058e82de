//! The LL-HLS segmenter: time-ordered samples of the program's tracks in, CMAF parts and
//! segments out (RFC 8216bis §4.4.4.9 Partial Segments, §4.4.3.1 target duration; CMAF
//! fragments per ISO/IEC 23000-19 §7.3.2).
//!
//! Decided here:
//! - Video drives the cuts. Parts last 85-100 % of PART-TARGET whatever the frame rate and
//!   its jitter: [`crate::part_fit`] decides where each frame goes, retiming the video by at
//!   most 40 ms where whole frames do not fit, and each segment's last frame takes that skew
//!   back. At 30 fps parts are 6 frames of 200 ms with no retiming. A segment closes before a keyframe once it is at least
//!   `segment_target - part_target` long; from that length on the segmenter asks for a
//!   keyframe ([`Event::KeyframeWanted`], again every second while none comes). Without a
//!   keyframe the segment grows: TARGETDURATION is the longest segment seen, rounded.
//! - A video sample's duration is the distance to the next one, so the newest frame is held
//!   until the next arrives (one frame of delay).
//! - A part holds the audio of its own time span: once video decides a cut at time T, the part
//!   waits until audio has reached T (AAC comes out of the transcoder later than the video it
//!   belongs to), or until video is `AUDIO_WAIT` past T, whichever comes first. Parts then end
//!   together on both tracks, so a player's buffered range (the intersection of the tracks')
//!   reaches the part's end. Events stay in order: a segment that starts meanwhile is announced
//!   after the waiting part.
//! - The program starts at the first keyframe; earlier samples are dropped.
//! - A segment is the concatenation of its parts (one `moof`+`mdat` each, after the `emsg`
//!   boxes of the timed metadata due in it, [`metadata`]): the bytes a player fetched as parts
//!   and the bytes of the segment are the same.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::fmp4::{self, Sample, TrackRun};
use crate::part_fit::{PartFit, Placement};

pub mod metadata;
mod types;
pub use metadata::TimedMetadata;
use metadata::{MetadataQueue, PartSpan};
pub use types::{Event, PartReady, ProgramTracks, SegmentReady, SegmenterConfig, TimedSample};

/// Video track id and timescale in the init segment.
pub const VIDEO_TRACK_ID: u32 = 1;
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Audio track id in the init segment (its timescale is its sample rate).
pub const AUDIO_TRACK_ID: u32 = 2;

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    start_dts: u64,
    program_time_ms: i64,
    discontinuity: bool,
    init_id: u32,
    parts: u32,
    /// Sum of its parts' video durations.
    ticks: u64,
    data: BytesMut,
    keyframe_asked_at: Option<u64>,
}

#[derive(Debug, Default)]
struct OpenPart {
    start_dts: Option<u64>,
    video: Vec<Sample>,
    video_base: u64,
    audio: Vec<Sample>,
    audio_base: u64,
}

/// The segmenter state machine. Push samples, then drain [`poll`](Self::poll).
#[derive(Debug)]
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: Option<ProgramTracks>,
    init_id: u32,
    next_msn: u64,
    fragment_sequence: u32,
    segment: Option<OpenSegment>,
    part: OpenPart,
    held_video: Option<TimedSample>,
    pending_discontinuity: bool,
    pending_part: Option<PendingPart>,
    /// Events that come after the pending part (a new segment starting meanwhile).
    deferred: VecDeque<Event>,
    /// End of the newest audio sample, on the video timeline.
    audio_end: u64,
    /// Decode time of the newest video frame seen.
    video_now: u64,
    /// The first keyframe was placed: audio is kept from now on.
    started: bool,
    events: VecDeque<Event>,
    longest_segment_s: f64,
    /// Fits whole frames into parts of 85-100 % of PART-TARGET.
    fit: PartFit,
    /// No keyframe placed yet in this epoch (the start, or after a discontinuity).
    awaiting_keyframe: bool,
    /// Audio that came while the epoch's first keyframe was held.
    early_audio: Vec<TimedSample>,
    /// Events waiting for the part that covers them.
    metadata: MetadataQueue,
    /// In [`finish`](Self::finish): the last part takes every waiting event.
    finishing: bool,
}

/// Cuts a part's video at `end` (video timeline); a part left without video loses its audio
/// too and is empty. Returns where its video now ends.
fn trim_video(part: &mut OpenPart, end: u64) -> u64 {
    let mut start = part.video_base;
    let mut keep = 0;
    for sample in part.video.iter_mut() {
        if start >= end {
            break;
        }
        sample.duration = sample.duration.min((end - start) as u32);
        start += u64::from(sample.duration);
        keep += 1;
    }
    part.video.truncate(keep);
    if keep == 0 {
        *part = OpenPart::default();
        return end;
    }
    start
}

/// Audio samples kept while the first keyframe of an epoch is held (about a second of AAC).
const EARLY_AUDIO_LIMIT: usize = 50;

/// Longest a cut part waits for its audio, in video ticks (250 ms).
const AUDIO_WAIT: u64 = 22_500;

/// A part whose video is complete, waiting for its audio.
#[derive(Debug)]
struct PendingPart {
    part: OpenPart,
    /// Its end on the video timeline (90 kHz).
    boundary: u64,
    /// The segment it belongs to, when the part also closes it.
    closing_segment: Option<OpenSegment>,
}

fn ticks(ms: u32) -> u64 {
    u64::from(ms) * u64::from(VIDEO_TIMESCALE) / 1000
}

impl Segmenter {
    /// `first_msn`: the media sequence number of the first segment (continues a previous run).
    pub fn new(config: SegmenterConfig, first_msn: u64) -> Self {
        Self {
            config,
            tracks: None,
            init_id: 0,
            next_msn: first_msn,
            fragment_sequence: 1,
            segment: None,
            part: OpenPart::default(),
            held_video: None,
            pending_discontinuity: false,
            pending_part: None,
            deferred: VecDeque::new(),
            audio_end: 0,
            video_now: 0,
            started: false,
            events: VecDeque::new(),
            longest_segment_s: 0.0,
            fit: PartFit::new(ticks(config.part_target_ms)),
            awaiting_keyframe: true,
            early_audio: Vec::new(),
            metadata: MetadataQueue::default(),
            finishing: false,
        }
    }

    /// A segmenter that continues an earlier program (after a restart): media sequence numbers
    /// from `next_msn`, init sections numbered after `last_init_id`, and the first segment
    /// marked as a discontinuity.
    pub fn resume(config: SegmenterConfig, next_msn: u64, last_init_id: u32) -> Self {
        let mut segmenter = Self::new(config, next_msn);
        segmenter.init_id = last_init_id;
        segmenter.pending_discontinuity = true;
        segmenter
    }

    /// The longest segment closed so far, in seconds.
    pub fn longest_segment_s(&self) -> f64 {
        self.longest_segment_s
    }

    /// Whether the program has started (its first keyframe was placed).
    pub fn is_running(&self) -> bool {
        self.started
    }

    /// Carries `metadata` as ID3 in an `emsg` before the `moof` of the part that covers its
    /// program time ([`metadata`] says which part and what time).
    pub fn push_metadata(&mut self, metadata: TimedMetadata) {
        self.metadata.push(metadata);
    }

    /// Timed metadata dropped because too many events waited for their part.
    pub fn metadata_dropped(&self) -> u64 {
        self.metadata.dropped()
    }

    /// Sets the tracks. If they change while the program runs, the open segment is closed
    /// (the next sample must then be a keyframe) and the next one is a discontinuity.
    pub fn set_tracks(&mut self, tracks: ProgramTracks) {
        if self.tracks.as_ref() == Some(&tracks) {
            return;
        }
        if self.tracks.is_some() {
            self.close_for_discontinuity();
        }
        self.tracks = Some(tracks);
        self.init_id += 1;
        let data = Bytes::from(fmp4::init_segment(&self.tracks.as_ref().expect("set above").descriptions()));
        self.events.push_back(Event::Init { id: self.init_id, data });
    }

    /// Marks a discontinuity without a change of tracks (e.g. a new presenter with the same
    /// parameters): the open segment closes, the next one starts with a discontinuity.
    pub fn discontinuity(&mut self) {
        self.close_for_discontinuity();
    }

    /// Flushes the held frame, closes the open segment, and marks the next one.
    fn close_for_discontinuity(&mut self) {
        self.flush_held();
        self.cut(true);
        self.release_pending(true);
        self.part = OpenPart::default();
        self.fit.reset();
        self.awaiting_keyframe = true;
        self.early_audio.clear();
        if self.started {
            self.pending_discontinuity = true;
        }
    }

    /// Places the held frame with the previous frame's duration.
    fn flush_held(&mut self) {
        if let Some(mut held) = self.held_video.take() {
            held.dts = self.fit.output_dts(held.dts);
            let duration = self.part.video.last().map(|s| s.duration).unwrap_or(VIDEO_TIMESCALE / 30);
            self.place_video(held, duration);
        }
    }

    pub fn push_video(&mut self, sample: TimedSample) {
        if self.tracks.is_none() {
            return;
        }
        if self.segment.is_none() && self.held_video.is_none() && !sample.keyframe {
            return; // the program starts at a keyframe
        }
        let Some(held) = self.held_video.take() else {
            self.held_video = Some(sample);
            return;
        };
        if sample.dts <= held.dts {
            // Not after the held frame: a timestamp step back. Drop it rather than break the track.
            self.held_video = Some(held);
            return;
        }
        let input_duration = sample.dts - held.dts;
        let mut held = held;
        held.dts = self.fit.output_dts(held.dts);
        let part_ticks = if self.segment.is_some() { self.part_ticks() } else { 0 };
        let duration = match self.fit.place(part_ticks, input_duration) {
            Placement::Append { duration } => duration,
            Placement::CutBefore { stretch, duration } => {
                if let Some(last) = self.part.video.last_mut() {
                    last.duration += stretch;
                    held.dts += u64::from(stretch);
                }
                self.cut(false);
                duration
            }
        };
        self.place_video(held, duration);
        let next_dts = self.fit.output_dts(sample.dts);
        self.video_now = next_dts;
        self.before_video(next_dts, sample.keyframe);
        self.held_video = Some(sample);
        self.release_pending(false);
    }

    pub fn push_audio(&mut self, sample: TimedSample) {
        let Some(duration) = sample.duration else {
            return;
        };
        let timescale = self.audio_timescale();
        let on_video_timeline = |dts: u64| dts * u64::from(VIDEO_TIMESCALE) / u64::from(timescale);
        if self.awaiting_keyframe {
            // Before the program (or a new epoch) starts: keep the audio that reaches past the
            // keyframe waiting to be placed (it is held until the next frame comes), so the
            // audio starts with the video instead of a frame or two after it.
            let reaches_keyframe = self
                .held_video
                .as_ref()
                .is_some_and(|held| held.keyframe && on_video_timeline(sample.dts + u64::from(duration)) > held.dts);
            if reaches_keyframe {
                if self.early_audio.len() >= EARLY_AUDIO_LIMIT {
                    self.early_audio.remove(0);
                }
                self.early_audio.push(sample);
            }
            return;
        }
        let start = on_video_timeline(sample.dts);
        let part = match self.pending_part.as_mut() {
            Some(pending) if start < pending.boundary => &mut pending.part,
            _ => &mut self.part,
        };
        if part.audio.is_empty() {
            part.audio_base = sample.dts;
        } else {
            let expected = part.audio_base + part.audio.iter().map(|s| u64::from(s.duration)).sum::<u64>();
            if sample.dts < expected {
                return; // overlaps what is already in the part
            }
        }
        part.audio.push(Sample { duration, keyframe: true, data: sample.data });
        self.audio_end = self.audio_end.max(on_video_timeline(sample.dts + u64::from(duration)));
        self.release_pending(false);
    }

    fn audio_timescale(&self) -> u32 {
        self.tracks.as_ref().and_then(|t| t.audio.as_ref()).map(|(_, timescale)| *timescale).unwrap_or(48_000).max(1)
    }

    /// Emits the pending part once its audio is in (or `force`), then what waited behind it.
    fn release_pending(&mut self, force: bool) {
        let Some(pending) = self.pending_part.as_ref() else { return };
        let ready = force || self.audio_end >= pending.boundary || self.video_now >= pending.boundary + AUDIO_WAIT;
        if !ready {
            return;
        }
        let Some(pending) = self.pending_part.take() else { return };
        match pending.closing_segment {
            Some(mut segment) => {
                self.emit_part(&mut segment, pending.part);
                self.emit_segment_closed(segment);
            }
            None => {
                if let Some(mut segment) = self.segment.take() {
                    self.emit_part(&mut segment, pending.part);
                    self.segment = Some(segment);
                }
            }
        }
        self.events.extend(self.deferred.drain(..));
    }

    /// Ends the program: the held frame goes out (with the previous frame's duration) and the
    /// open part and segment close. Video is cut where the audio ends (the transcoder keeps the
    /// newest AAC frames to itself), so both tracks end together and a player reaches the end
    /// of the replay instead of waiting for audio that never comes; a part left without video
    /// is dropped whole.
    pub fn finish(&mut self) {
        self.flush_held();
        let has_audio = self.tracks.as_ref().is_some_and(|t| t.audio.is_some());
        if has_audio && self.audio_end > 0 {
            let end = self.audio_end;
            if let Some(pending) = self.pending_part.as_mut() {
                pending.boundary = trim_video(&mut pending.part, end);
            }
            trim_video(&mut self.part, end);
        }
        self.finishing = true;
        self.cut(true);
        self.release_pending(true);
        self.finishing = false;
    }

    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Puts a video frame whose duration is now known into the open part (opening a segment
    /// for the program's first keyframe).
    fn place_video(&mut self, sample: TimedSample, duration: u32) {
        if self.segment.is_none() {
            if !sample.keyframe {
                return;
            }
            self.open_segment(&sample);
            self.started = true;
            if std::mem::take(&mut self.awaiting_keyframe) {
                self.place_video_sample(sample, duration);
                for early in std::mem::take(&mut self.early_audio) {
                    self.push_audio(early);
                }
                return;
            }
        }
        self.place_video_sample(sample, duration);
    }

    /// Appends a video sample to the open part.
    fn place_video_sample(&mut self, sample: TimedSample, duration: u32) {
        if self.part.video.is_empty() {
            self.part.video_base = sample.dts;
            self.part.start_dts = Some(sample.dts);
        }
        self.part.video.push(Sample { duration, keyframe: sample.keyframe, data: sample.data });
    }

    /// Decides, before the next frame (at output time `next_dts`) joins, whether the open
    /// part or segment closes.
    fn before_video(&mut self, next_dts: u64, next_keyframe: bool) {
        let Some(segment) = self.segment.as_mut() else {
            return;
        };
        let segment_len = next_dts.saturating_sub(segment.start_dts);
        let due = ticks(self.config.segment_target_ms.saturating_sub(self.config.part_target_ms));
        if segment_len >= due {
            let ask = match segment.keyframe_asked_at {
                None => true,
                Some(at) => next_dts.saturating_sub(at) >= u64::from(VIDEO_TIMESCALE),
            };
            if ask {
                segment.keyframe_asked_at = Some(next_dts);
                self.events.push_back(Event::KeyframeWanted);
            }
        }
        if next_keyframe && segment_len >= due {
            // The segment's last frame takes the skew back; the keyframe opens the next
            // segment on its input time when it is placed.
            let part_ticks = self.part_ticks();
            if let Some(last) = self.part.video.last_mut() {
                last.duration = self.fit.absorb(part_ticks, last.duration);
            }
            self.cut(true);
            return;
        }
        // A part that is long enough closes now if the next frame (guessed to last as long as
        // the last one) would overfill it: the part goes out one frame earlier.
        let last = self.part.video.last().map(|s| u64::from(s.duration)).unwrap_or(0);
        if self.fit.should_cut(self.part_ticks(), last) {
            self.cut(false);
        }
    }

    /// Video ticks in the open part.
    fn part_ticks(&self) -> u64 {
        self.part.video.iter().map(|s| u64::from(s.duration)).sum()
    }

    fn open_segment(&mut self, first: &TimedSample) {
        let msn = self.next_msn;
        self.next_msn += 1;
        let discontinuity = std::mem::take(&mut self.pending_discontinuity);
        self.segment = Some(OpenSegment {
            msn,
            start_dts: first.dts,
            program_time_ms: first.program_time_ms,
            discontinuity,
            init_id: self.init_id,
            parts: 0,
            ticks: 0,
            data: BytesMut::new(),
            keyframe_asked_at: None,
        });
        let started =
            Event::SegmentStarted { msn, program_time_ms: first.program_time_ms, discontinuity, init_id: self.init_id };
        if self.pending_part.is_some() {
            self.deferred.push_back(started);
        } else {
            self.events.push_back(started);
        }
    }

    /// Closes the open part; with `close_segment`, the open segment too. With an audio track the
    /// part first waits for its audio ([`release_pending`](Self::release_pending)).
    fn cut(&mut self, close_segment: bool) {
        if self.segment.is_none() {
            return;
        }
        // One part waits at a time: an older one goes now.
        self.release_pending(true);
        let part = std::mem::take(&mut self.part);
        let has_audio = self.tracks.as_ref().is_some_and(|t| t.audio.is_some());
        if has_audio && !part.video.is_empty() {
            let boundary = part.video_base + part.video.iter().map(|s| u64::from(s.duration)).sum::<u64>();
            let closing_segment = if close_segment { self.segment.take() } else { None };
            self.pending_part = Some(PendingPart { part, boundary, closing_segment });
            self.release_pending(false);
            return;
        }
        let Some(mut segment) = self.segment.take() else { return };
        self.emit_part(&mut segment, part);
        if close_segment {
            self.emit_segment_closed(segment);
        } else {
            self.segment = Some(segment);
        }
    }

    fn emit_part(&mut self, segment: &mut OpenSegment, part: OpenPart) {
        if part.video.is_empty() && part.audio.is_empty() {
            return;
        }
        let video_ticks: u64 = part.video.iter().map(|s| u64::from(s.duration)).sum();
        let independent = part.video.first().is_some_and(|s| s.keyframe);
        let mut data = Vec::new();
        let last_part = self.finishing && self.pending_part.is_none() && self.part.video.is_empty();
        self.metadata.write_due(&mut data, PartSpan::of(segment, &part), last_part);
        let mut runs = Vec::with_capacity(2);
        if !part.video.is_empty() {
            runs.push(TrackRun { track_id: VIDEO_TRACK_ID, base_decode_time: part.video_base, samples: part.video });
        }
        if !part.audio.is_empty() {
            runs.push(TrackRun { track_id: AUDIO_TRACK_ID, base_decode_time: part.audio_base, samples: part.audio });
        }
        fmp4::write_media_fragment(&mut data, self.fragment_sequence, &runs);
        let data = Bytes::from(data);
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        segment.data.extend_from_slice(&data);
        segment.ticks += video_ticks;
        let index = segment.parts;
        segment.parts += 1;
        self.events.push_back(Event::Part(PartReady {
            msn: segment.msn,
            index,
            duration_s: video_ticks as f64 / f64::from(VIDEO_TIMESCALE),
            independent,
            data,
        }));
    }

    fn emit_segment_closed(&mut self, segment: OpenSegment) {
        if segment.parts == 0 {
            // Nothing was cut into it (the end came right after its keyframe, whose part was
            // dropped): it is never listed, so it is never closed either.
            return;
        }
        let duration_s = segment.ticks as f64 / f64::from(VIDEO_TIMESCALE);
        self.longest_segment_s = self.longest_segment_s.max(duration_s);
        self.events.push_back(Event::SegmentClosed(SegmentReady {
            msn: segment.msn,
            duration_s,
            program_time_ms: segment.program_time_ms,
            discontinuity: segment.discontinuity,
            init_id: segment.init_id,
            parts: segment.parts,
            data: segment.data.freeze(),
        }));
    }
}

#[cfg(test)]
pub(crate) mod tests;
