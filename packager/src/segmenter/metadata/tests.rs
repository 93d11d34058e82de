//! Tests of timed metadata in the segmenter's output, read back with an independent parser
//! (mp4-atom, strict) and a small ID3 reader written here from the ID3v2.4 structure document.

use bytes::Bytes;
use mp4_atom::{Any, Decode, Emsg, EmsgTimestamp, Mdat};

use super::super::tests::{audio, tracks};
use super::super::{Event, PartReady, SegmentReady, Segmenter, SegmenterConfig, TimedSample};
use super::*;
use crate::emsg::{EVENT_VALUE, ID3_SCHEME, UNKNOWN_DURATION};

const FRAME: u64 = 3000; // 30 fps at 90 kHz
const T0: i64 = 1_700_000_000_000;

fn video(n: u64) -> TimedSample {
    TimedSample {
        dts: n * FRAME,
        duration: None,
        keyframe: n.is_multiple_of(60),
        program_time_ms: T0 + (n * 1000 / 30) as i64,
        data: Bytes::from(vec![n as u8; 100]),
    }
}

fn event(id: u32, program_time_ms: i64) -> TimedMetadata {
    TimedMetadata::event(id, program_time_ms, None, &format!(r#"{{"id":{id},"at":{program_time_ms}}}"#)).unwrap()
}

/// A segmenter fed with A/V from frame `from` up to `to` (exclusive); `audio` is the next AAC frame.
struct Feed {
    s: Segmenter,
    next_audio: u64,
    events: Vec<Event>,
}

impl Feed {
    fn new() -> Self {
        let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
        s.set_tracks(tracks(0x1f));
        Self { s, next_audio: 0, events: Vec::new() }
    }

    fn frames(&mut self, frames: std::ops::Range<u64>) {
        for n in frames {
            while self.next_audio * 1024 * 90_000 / 48_000 <= n * FRAME {
                self.s.push_audio(audio(self.next_audio));
                self.next_audio += 1;
            }
            self.s.push_video(video(n));
            self.events.extend(std::iter::from_fn(|| self.s.poll()));
        }
    }

    fn finish(&mut self) {
        self.s.finish();
        self.events.extend(std::iter::from_fn(|| self.s.poll()));
    }

    fn parts(&self) -> Vec<&PartReady> {
        self.events.iter().filter_map(|e| if let Event::Part(p) = e { Some(p) } else { None }).collect()
    }
}

/// A part read back: its `emsg` boxes, which must all come before its `moof`, and its video
/// span on the 90 kHz timeline.
struct ReadPart {
    emsgs: Vec<Emsg>,
    video_start: u64,
    video_end: u64,
}

fn read_part(data: &[u8]) -> ReadPart {
    let mut input = std::io::Cursor::new(data);
    let mut emsgs = Vec::new();
    let moof = loop {
        match Any::decode(&mut input).unwrap() {
            Any::Emsg(emsg) => emsgs.push(emsg),
            Any::Moof(moof) => break moof,
            other => panic!("unexpected box before the moof: {other:?}"),
        }
    };
    Mdat::decode(&mut input).unwrap();
    assert_eq!(input.position() as usize, data.len(), "one moof + mdat after the emsgs");
    let traf = &moof.traf[0];
    let video_start = traf.tfdt.as_ref().unwrap().base_media_decode_time;
    let ticks: u64 = traf.trun[0].samples.iter().map(|e| u64::from(e.duration.unwrap())).sum();
    ReadPart { emsgs, video_start, video_end: video_start + ticks }
}

fn presentation_time(emsg: &Emsg) -> u64 {
    let EmsgTimestamp::Absolute(t) = emsg.presentation_time else { panic!("version 0 emsg: {emsg:?}") };
    t
}

/// Reads an ID3v2.4 tag's frames as (id, body), checking the header and synchsafe sizes.
fn id3_frames(tag: &[u8]) -> Vec<(String, Vec<u8>)> {
    let synchsafe = |b: &[u8]| b.iter().fold(0usize, |n, &b| (n << 7) | usize::from(b & 0x7f));
    assert_eq!(&tag[..5], b"ID3\x04\x00", "ID3v2.4.0");
    assert_eq!(tag[5], 0, "no flags");
    let size = synchsafe(&tag[6..10]);
    assert_eq!(size + 10, tag.len());
    let mut frames = Vec::new();
    let mut at = 10;
    while at < tag.len() {
        let id = String::from_utf8(tag[at..at + 4].to_vec()).unwrap();
        let len = synchsafe(&tag[at + 4..at + 8]);
        frames.push((id, tag[at + 10..at + 10 + len].to_vec()));
        at += 10 + len;
    }
    frames
}

/// The (description, value) of a tag holding one UTF-8 `TXXX` frame.
fn txxx(tag: &[u8]) -> (String, String) {
    let frames = id3_frames(tag);
    assert_eq!(frames.len(), 1);
    let (id, body) = &frames[0];
    assert_eq!(id, "TXXX");
    assert_eq!(body[0], 3, "UTF-8");
    let nul = body[1..].iter().position(|&b| b == 0).unwrap() + 1;
    (String::from_utf8(body[1..nul].to_vec()).unwrap(), String::from_utf8(body[nul + 1..].to_vec()).unwrap())
}

#[test]
fn events_ride_before_the_moof_of_the_part_that_covers_them() {
    let mut feed = Feed::new();
    let mut expected = Vec::new();
    // An event at the live edge every 7 frames: stamped with the newest frame's program time.
    for chunk in 0..12u64 {
        feed.frames(chunk * 7..chunk * 7 + 7);
        let n = chunk * 7 + 6;
        feed.s.push_metadata(event(chunk as u32, video(n).program_time_ms));
        expected.push((chunk as u32, n * FRAME, video(n).program_time_ms));
    }
    feed.frames(84..120);
    let mut seen = Vec::new();
    for part in feed.parts() {
        let read = read_part(&part.data);
        for emsg in &read.emsgs {
            assert_eq!(emsg.scheme_id_uri, ID3_SCHEME);
            assert_eq!(emsg.value, EVENT_VALUE);
            assert_eq!(emsg.timescale, 90_000);
            assert_eq!(emsg.event_duration, UNKNOWN_DURATION);
            let t = presentation_time(emsg);
            assert!(read.video_start <= t && t < read.video_end, "in its part's span: {t} {part:?}");
            let (_, dts, program_time_ms) = expected[emsg.id as usize];
            assert!(t.abs_diff(dts) <= FRAME, "event {} at {t}, its frame at {dts}", emsg.id);
            let (description, value) = txxx(&emsg.message_data);
            assert_eq!(description, "townhall");
            assert_eq!(value, format!(r#"{{"id":{},"at":{program_time_ms}}}"#, emsg.id));
            seen.push(emsg.id);
        }
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>(), "each event once, in order");
    assert_eq!(feed.s.metadata_dropped(), 0);
}

#[test]
fn a_segment_is_its_parts_including_their_emsg_boxes() {
    let mut feed = Feed::new();
    feed.frames(0..30);
    feed.s.push_metadata(event(1, T0 + 1000));
    feed.s.push_metadata(event(2, T0 + 1500));
    feed.frames(30..130);
    let segment: &SegmentReady =
        feed.events.iter().find_map(|e| if let Event::SegmentClosed(s) = e { Some(s) } else { None }).unwrap();
    let parts: Vec<u8> = feed.parts().iter().filter(|p| p.msn == segment.msn).flat_map(|p| p.data.to_vec()).collect();
    assert_eq!(&segment.data[..], &parts[..]);
    let mut input = std::io::Cursor::new(&segment.data[..]);
    let (mut emsgs, mut moofs) = (Vec::new(), 0);
    while (input.position() as usize) < segment.data.len() {
        match Any::decode(&mut input).unwrap() {
            Any::Emsg(emsg) => emsgs.push((emsg.id, presentation_time(&emsg))),
            Any::Moof(_) => moofs += 1,
            Any::Mdat(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(moofs, 10);
    assert_eq!(emsgs, vec![(1, 90_000), (2, 135_000)]);
}

#[test]
fn an_event_already_written_goes_into_the_next_part_at_its_start() {
    let mut feed = Feed::new();
    feed.frames(0..40);
    let written = feed.parts().len();
    assert!(written >= 5, "{written}");
    // Half a second before the media written so far (parts of 6 frames: 30 frames written).
    feed.s.push_metadata(event(7, T0 + 500));
    feed.frames(40..60);
    let parts = feed.parts();
    let next = read_part(&parts[written].data);
    assert_eq!(next.emsgs.len(), 1);
    assert_eq!(presentation_time(&next.emsgs[0]), next.video_start, "clamped to the part's start");
    assert!(parts[..written].iter().chain(&parts[written + 1..]).all(|p| read_part(&p.data).emsgs.is_empty()));
}

#[test]
fn an_event_ahead_of_the_media_waits_for_its_part() {
    let mut feed = Feed::new();
    feed.frames(0..3);
    feed.s.push_metadata(event(3, T0 + 1_510)); // frame 45.3: in the part of frames 42..48
    feed.frames(3..90);
    let with_emsg: Vec<ReadPart> =
        feed.parts().iter().map(|p| read_part(&p.data)).filter(|p| !p.emsgs.is_empty()).collect();
    assert_eq!(with_emsg.len(), 1);
    assert_eq!((with_emsg[0].video_start, with_emsg[0].video_end), (42 * FRAME, 48 * FRAME));
    assert_eq!(presentation_time(&with_emsg[0].emsgs[0]), 1_510 * 90);
}

#[test]
fn events_before_the_program_starts_go_into_the_first_part() {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
    s.push_metadata(event(1, T0 - 60_000)); // before the tracks are even known
    let mut feed = Feed { s, next_audio: 0, events: Vec::new() };
    feed.s.set_tracks(tracks(0x1f));
    feed.frames(0..20);
    let first = read_part(&feed.parts()[0].data);
    assert_eq!(first.emsgs.len(), 1);
    assert_eq!(presentation_time(&first.emsgs[0]), 0);
}

#[test]
fn at_finish_waiting_events_go_into_the_last_part_within_its_span() {
    let mut feed = Feed::new();
    feed.frames(0..50);
    feed.s.push_metadata(event(1, T0 + 1_600)); // in the media
    feed.s.push_metadata(event(2, T0 + 60_000)); // a minute after the last frame
    feed.finish();
    let parts = feed.parts();
    let last = read_part(&parts.last().unwrap().data);
    let ids: Vec<u32> = last.emsgs.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![1, 2]);
    for emsg in &last.emsgs {
        let t = presentation_time(emsg);
        assert!(last.video_start <= t && t < last.video_end, "{t} in {}..{}", last.video_start, last.video_end);
    }
    assert!(parts[..parts.len() - 1].iter().all(|p| read_part(&p.data).emsgs.is_empty()));
}

#[test]
fn the_waiting_queue_is_bounded_and_drops_the_oldest() {
    let mut feed = Feed::new();
    for id in 0..MAX_WAITING_METADATA as u32 + 5 {
        feed.s.push_metadata(event(id, T0));
    }
    assert_eq!(feed.s.metadata_dropped(), 5);
    feed.frames(0..10);
    let first = read_part(&feed.parts()[0].data);
    let ids: Vec<u32> = first.emsgs.iter().map(|e| e.id).collect();
    assert_eq!(ids, (5..MAX_WAITING_METADATA as u32 + 5).collect::<Vec<_>>());
}

#[test]
fn a_known_duration_is_written_in_the_video_timescale() {
    let mut feed = Feed::new();
    let mut metadata = event(1, T0);
    metadata.duration_ms = Some(2_500);
    feed.s.push_metadata(metadata);
    feed.frames(0..10);
    let first = read_part(&feed.parts()[0].data);
    assert_eq!(first.emsgs[0].event_duration, 225_000);
}

#[test]
fn after_a_discontinuity_events_map_through_the_new_segment() {
    let mut feed = Feed::new();
    feed.frames(0..20);
    // Frame 27's program time: after the cut, in the new presenter's first segment.
    feed.s.push_metadata(event(1, video(27).program_time_ms));
    feed.s.discontinuity();
    // The new presenter starts at frame 21 (a keyframe), 3 s later on the program clock.
    for n in 21..60u64 {
        feed.s.push_video(TimedSample {
            keyframe: n == 21,
            program_time_ms: video(n).program_time_ms + 3_000,
            ..video(n)
        });
    }
    feed.events.extend(std::iter::from_fn(|| feed.s.poll()));
    let with_emsg: Vec<ReadPart> =
        feed.parts().iter().map(|p| read_part(&p.data)).filter(|p| !p.emsgs.is_empty()).collect();
    assert_eq!(with_emsg.len(), 1);
    // Its program time is 3 s before the new segment's PDT: clamped to the first part written.
    assert_eq!(presentation_time(&with_emsg[0].emsgs[0]), with_emsg[0].video_start);
    assert!(with_emsg[0].video_start >= 21 * FRAME);
}

#[test]
fn program_time_maps_onto_the_segment_anchor() {
    assert_eq!(media_time(180_000, T0, T0 + 1_000), 270_000);
    assert_eq!(media_time(180_000, T0, T0 - 3_000), -90_000);
    assert_eq!(media_time(0, T0, i64::MAX), (i128::from(i64::MAX) - i128::from(T0)) * 90);
}

/// ffprobe (FFmpeg's mov demuxer) still reads init + a segment carrying `emsg` boxes: both
/// streams, every sample. (The test's H.264 samples are not real pictures, so the decoder's
/// complaints are ignored; the demuxer's would be `[mov,mp4,...]` lines.)
/// ffprobe comes with Debian's ffmpeg, which scripts/setup.sh installs.
#[test]
fn ffprobe_reads_a_segment_with_emsg_boxes() {
    let mut feed = Feed::new();
    for n in 0..10 {
        feed.s.push_metadata(event(n, T0 + i64::from(n) * 150));
    }
    feed.frames(0..70);
    let Some(Event::Init { data: init, .. }) = feed.events.first() else { panic!() };
    let segment =
        feed.events.iter().find_map(|e| if let Event::SegmentClosed(s) = e { Some(s) } else { None }).unwrap();
    let path = std::env::temp_dir().join(format!("townhall-emsg-{}.mp4", std::process::id()));
    std::fs::write(&path, [&init[..], &segment.data[..]].concat()).unwrap();
    let probe = |entries: &str| {
        let output = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", entries, "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.lines().any(|l| l.starts_with("[mov")), "{stderr}");
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let codecs = probe("stream=codec_name");
    let packets = probe("packet=stream_index");
    std::fs::remove_file(&path).ok();
    assert_eq!(codecs, vec!["h264", "aac"]);
    let mut input = std::io::Cursor::new(&segment.data[..]);
    let (mut video, mut audio, mut emsgs) = (0, 0, 0);
    while (input.position() as usize) < segment.data.len() {
        match Any::decode(&mut input).unwrap() {
            Any::Emsg(_) => emsgs += 1,
            Any::Moof(moof) => {
                video += moof.traf[0].trun[0].samples.len();
                audio += moof.traf.get(1).map_or(0, |t| t.trun[0].samples.len());
            }
            _ => {}
        }
    }
    assert_eq!((emsgs, video), (10, 60));
    assert_eq!(packets.iter().filter(|p| *p == "0").count(), video);
    assert_eq!(packets.iter().filter(|p| *p == "1").count(), audio);
}
