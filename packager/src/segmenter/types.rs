//! The segmenter's contract: its configuration, the samples it takes in, and the events it
//! gives out (init sections, parts, closed segments, keyframe requests).

use bytes::Bytes;

use crate::fmp4::{SampleEntry, TrackDescription};

use super::{AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// PART-TARGET in milliseconds.
    pub part_target_ms: u32,
    /// Wanted segment duration in milliseconds.
    pub segment_target_ms: u32,
}

/// One sample on the program's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedSample {
    /// Decode time in the track's timescale (video: 90 kHz; audio: its sample rate).
    pub dts: u64,
    /// Duration in the track's timescale; `None` for video (taken from the next sample).
    pub duration: Option<u32>,
    pub keyframe: bool,
    /// Program time of the sample (ms since the Unix epoch).
    pub program_time_ms: i64,
    pub data: Bytes,
}

/// The program's tracks, as the init segment describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramTracks {
    pub video: SampleEntry,
    /// `(entry, timescale)`.
    pub audio: Option<(SampleEntry, u32)>,
}

impl ProgramTracks {
    pub(super) fn descriptions(&self) -> Vec<TrackDescription> {
        let mut tracks =
            vec![TrackDescription { track_id: VIDEO_TRACK_ID, timescale: VIDEO_TIMESCALE, entry: self.video.clone() }];
        if let Some((entry, timescale)) = &self.audio {
            tracks.push(TrackDescription { track_id: AUDIO_TRACK_ID, timescale: *timescale, entry: entry.clone() });
        }
        tracks
    }
}

/// A part that was cut.
#[derive(Debug, Clone, PartialEq)]
pub struct PartReady {
    pub msn: u64,
    pub index: u32,
    pub duration_s: f64,
    /// Starts with a keyframe.
    pub independent: bool,
    pub data: Bytes,
}

/// A segment that was closed.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReady {
    pub msn: u64,
    pub duration_s: f64,
    /// Program time of its first video frame.
    pub program_time_ms: i64,
    /// The first segment after a change of init section (new presenter, new parameters).
    pub discontinuity: bool,
    /// Which init section it needs ([`Event::Init`] numbers them from 1).
    pub init_id: u32,
    pub parts: u32,
    pub data: Bytes,
}

/// What the segmenter produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new init section: the first one, or after [`Segmenter::set_tracks`] changed them.
    Init {
        id: u32,
        data: Bytes,
    },
    /// A segment starts: its number, program time and whether it follows a discontinuity.
    SegmentStarted {
        msn: u64,
        program_time_ms: i64,
        discontinuity: bool,
        init_id: u32,
    },
    Part(PartReady),
    SegmentClosed(SegmentReady),
    /// Ask the presenter for a keyframe (PLI): a segment is due.
    KeyframeWanted,
}
