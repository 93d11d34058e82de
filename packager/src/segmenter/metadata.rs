//! Timed metadata in the program's media: events stamped with program time go out as ID3 in
//! `emsg` boxes (AOM "Carriage of ID3 Timed Metadata in CMAF"; [`crate::emsg`]) before the
//! `moof` of a part (ISO/IEC 23000-19 §7.4.5), so a segment, the concatenation of its parts,
//! carries them too (the replay).
//!
//! Decided here:
//! - **Program time → media time** goes through the anchor of the segment the part belongs to:
//!   its first video frame's decode time and program time (what its EXT-X-PROGRAM-DATE-TIME
//!   says). `media = start_dts + (program_time - segment_program_time) × 90`. A player's
//!   `playingDate` is that PDT plus the time played into the segment, so the cue fires when
//!   `playingDate` reaches the event's program time: the moment the WebSocket and DATERANGE
//!   paths show it. (Frame by frame, capture times and the part fitting's retiming make a
//!   frame differ from this line by up to ~40 ms; the PDT line is what players agree on.)
//! - **Which part**: the first part written whose video ends after the event's media time.
//!   `presentation_time` (90 kHz, the video's `tfdt` timeline) is never before that part's
//!   start: an event whose time has already been written (pushed late, or before the program
//!   started) is clamped to the start of the next part written. An event ahead of the media
//!   waits for the part that covers it.
//! - **Before the program starts**: events wait like any other and go into the first part, at
//!   its start.
//! - **At `finish()`**: every waiting event goes into the last part, clamped into its span, so
//!   the replay keeps what happened up to the end. With no part left to write they keep waiting
//!   (for a program that resumes); events pushed after `finish()` wait the same way.
//! - **Memory**: at most [`MAX_WAITING_METADATA`] events wait; a push beyond drops the oldest
//!   and counts it ([`Segmenter::metadata_dropped`](super::Segmenter::metadata_dropped)).

use std::collections::VecDeque;

use bytes::Bytes;

use super::{OpenPart, OpenSegment, VIDEO_TIMESCALE};
use crate::emsg::{self, EventMessage};
use crate::id3::{self, Id3Error};

/// Most events waiting for their part.
pub const MAX_WAITING_METADATA: usize = 1000;

/// One event to carry in the media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedMetadata {
    /// The `emsg` id: the same event pushed twice keeps its id.
    pub id: u32,
    /// When it happened (ms since the Unix epoch, the program's clock).
    pub program_time_ms: i64,
    /// `None`: unknown (hls.js leaves the cue open until the next one starts).
    pub duration_ms: Option<u32>,
    /// A complete ID3v2 tag: the `emsg`'s `message_data`, as is.
    pub payload: Bytes,
}

impl TimedMetadata {
    /// An event whose JSON rides in an ID3 `TXXX` frame described "townhall"
    /// ([`id3::event_tag`]); hls.js shows it as a cue with `value.data` the JSON.
    pub fn event(id: u32, program_time_ms: i64, duration_ms: Option<u32>, json: &str) -> Result<Self, Id3Error> {
        Ok(Self { id, program_time_ms, duration_ms, payload: Bytes::from(id3::event_tag(json)?) })
    }
}

/// A part on the video timeline (90 kHz) and the anchor of its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartSpan {
    pub start: u64,
    /// Exclusive. Equal to `start` for a part without video.
    pub end: u64,
    pub segment_start: u64,
    pub segment_program_time_ms: i64,
}

impl PartSpan {
    /// The span of `part`, the next part of `segment`.
    pub fn of(segment: &OpenSegment, part: &OpenPart) -> Self {
        let ticks: u64 = part.video.iter().map(|s| u64::from(s.duration)).sum();
        let start = if part.video.is_empty() { segment.start_dts + segment.ticks } else { part.video_base };
        Self {
            start,
            end: start + ticks,
            segment_start: segment.start_dts,
            segment_program_time_ms: segment.program_time_ms,
        }
    }
}

/// The media time (90 kHz) of `program_time_ms` in a segment starting at decode time
/// `segment_start` and program time `segment_program_time_ms`; negative before the timeline.
pub fn media_time(segment_start: u64, segment_program_time_ms: i64, program_time_ms: i64) -> i128 {
    let ms = i128::from(program_time_ms) - i128::from(segment_program_time_ms);
    i128::from(segment_start) + ms * i128::from(VIDEO_TIMESCALE) / 1000
}

/// Events waiting for the part that covers them.
#[derive(Debug, Default)]
pub(super) struct MetadataQueue {
    waiting: VecDeque<TimedMetadata>,
    dropped: u64,
}

impl MetadataQueue {
    pub fn push(&mut self, metadata: TimedMetadata) {
        if self.waiting.len() >= MAX_WAITING_METADATA {
            self.waiting.pop_front();
            self.dropped += 1;
        }
        self.waiting.push_back(metadata);
    }

    /// Events dropped because too many were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes an `emsg` for each waiting event due in the part at `span` (every one, with
    /// `last_part`), in the order they were pushed.
    pub fn write_due(&mut self, out: &mut Vec<u8>, span: PartSpan, last_part: bool) {
        let latest = span.end.saturating_sub(1).max(span.start);
        self.waiting.retain(|event| {
            let at = media_time(span.segment_start, span.segment_program_time_ms, event.program_time_ms);
            if !last_part && at >= i128::from(span.end) {
                return true;
            }
            let presentation_time = at.clamp(i128::from(span.start), i128::from(latest)) as u64;
            let duration = event.duration_ms.map_or(emsg::UNKNOWN_DURATION, |ms| {
                (u64::from(ms) * u64::from(VIDEO_TIMESCALE) / 1000).min(u64::from(emsg::UNKNOWN_DURATION - 1)) as u32
            });
            let message =
                EventMessage::id3(event.id, VIDEO_TIMESCALE, presentation_time, duration, event.payload.clone());
            emsg::write_emsg(out, &message);
            false
        });
    }
}

#[cfg(test)]
mod tests;
