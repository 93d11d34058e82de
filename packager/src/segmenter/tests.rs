//! Tests of the segmenter (`super`), with an independent parser (mp4-atom, strict) reading
//! what it writes.

use super::*;
use crate::fmp4::SampleEntry;
use mp4_atom::{Decode, Mdat, Moof};

const FRAME: u64 = 3000; // 30 fps at 90 kHz

/// 640x360 H.264 (SPS ending in `sps_tag`) and 48 kHz stereo AAC: the tracks of the
/// packager's tests.
pub(crate) fn tracks(sps_tag: u8) -> ProgramTracks {
    ProgramTracks {
        video: SampleEntry::Avc {
            sps: Bytes::from(vec![0x67, 0x42, 0xc0, sps_tag]),
            pps: Bytes::from_static(&[0x68, 0xce]),
            width: 640,
            height: 360,
        },
        audio: Some((
            SampleEntry::Aac {
                sample_rate: 48_000,
                channels: 2,
                audio_specific_config: fmp4::aac_lc_audio_specific_config(48_000, 2),
                bitrate: 128_000,
            },
            48_000,
        )),
    }
}

fn video(n: u64, keyframe: bool) -> TimedSample {
    TimedSample {
        dts: n * FRAME,
        duration: None,
        keyframe,
        program_time_ms: 1_700_000_000_000 + (n * 1000 / 30) as i64,
        data: Bytes::from(vec![n as u8; 100]),
    }
}

pub(crate) fn audio(n: u64) -> TimedSample {
    TimedSample {
        dts: n * 1024,
        duration: Some(1024),
        keyframe: true,
        program_time_ms: 0,
        data: Bytes::from_static(b"aac"),
    }
}

/// Feeds `seconds` of 30 fps video (keyframe every `gop` frames) and 48 kHz AAC, in
/// time order, and collects the events.
fn run(seconds: u64, gop: u64) -> Vec<Event> {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 100);
    s.set_tracks(tracks(0x1f));
    let mut events = Vec::new();
    let mut next_audio = 0;
    for n in 0..seconds * 30 {
        while next_audio * 1024 * 90_000 / 48_000 <= n * FRAME {
            s.push_audio(audio(next_audio));
            next_audio += 1;
        }
        s.push_video(video(n, n % gop == 0));
        events.extend(std::iter::from_fn(|| s.poll()));
    }
    s.finish();
    events.extend(std::iter::from_fn(|| s.poll()));
    events
}

#[test]
fn parts_fill_the_part_target_and_segments_start_on_keyframes() {
    let events = run(6, 60);
    assert!(matches!(&events[0], Event::Init { id: 1, .. }));
    assert!(matches!(&events[1], Event::SegmentStarted { msn: 100, discontinuity: false, init_id: 1, .. }));
    let segments: Vec<&SegmentReady> =
        events.iter().filter_map(|e| if let Event::SegmentClosed(s) = e { Some(s) } else { None }).collect();
    assert_eq!(segments.iter().map(|s| s.msn).collect::<Vec<_>>(), vec![100, 101, 102]);
    for (i, segment) in segments.iter().enumerate() {
        // The very last one ends where the audio does (less than a video frame earlier).
        let tolerance = if i + 1 == segments.len() { 0.034 } else { 1e-9 };
        assert!((segment.duration_s - 2.0).abs() < tolerance, "{}", segment.duration_s);
        assert_eq!(segment.parts, 10);
    }
    let parts: Vec<&PartReady> =
        events.iter().filter_map(|e| if let Event::Part(p) = e { Some(p) } else { None }).collect();
    assert_eq!(parts.len(), 30);
    for part in &parts[..29] {
        assert!((part.duration_s - 0.2).abs() < 1e-9, "{part:?}");
        assert_eq!(part.independent, part.index == 0);
    }
    // Keyframes were asked for once per segment, when it reached 1.8 s.
    assert_eq!(events.iter().filter(|e| matches!(e, Event::KeyframeWanted)).count(), 3);
    assert_eq!(segments[1].program_time_ms, 1_700_000_000_000 + 2000);
}

#[test]
fn a_segment_is_its_parts_and_parses_as_cmaf_fragments() {
    let events = run(3, 60);
    let Some(Event::SegmentClosed(segment)) = events.iter().find(|e| matches!(e, Event::SegmentClosed(_))) else {
        panic!()
    };
    let parts: Vec<u8> = events
        .iter()
        .filter_map(|e| if let Event::Part(p) = e { (p.msn == segment.msn).then(|| p.data.to_vec()) } else { None })
        .flatten()
        .collect();
    assert_eq!(&segment.data[..], &parts[..]);
    let mut input = std::io::Cursor::new(&segment.data[..]);
    let mut video_dts = Vec::new();
    let mut audio_samples = 0;
    while (input.position() as usize) < segment.data.len() {
        let moof = Moof::decode(&mut input).unwrap();
        Mdat::decode(&mut input).unwrap();
        for traf in &moof.traf {
            let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            let entries: Vec<_> = traf.trun[0].samples.iter().collect();
            if traf.tfhd.track_id == VIDEO_TRACK_ID {
                let mut t = base;
                for e in &entries {
                    video_dts.push(t);
                    t += u64::from(e.duration.unwrap());
                }
            } else {
                audio_samples += entries.len();
            }
        }
    }
    assert_eq!(video_dts, (0..60).map(|n| n * FRAME).collect::<Vec<_>>(), "continuous video timeline");
    assert!((91..=95).contains(&audio_samples), "2 s of AAC frames: {audio_samples}");
}

#[test]
fn parts_wait_for_late_audio_so_both_tracks_end_together() {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
    s.set_tracks(tracks(0x1f));
    let mut events = Vec::new();
    let mut next_audio = 0u64;
    for n in 0..120u64 {
        s.push_video(video(n, n % 60 == 0));
        // Audio comes 80 ms (7 200 ticks) after the video of the same instant.
        while (next_audio * 1024 * 90_000 / 48_000) + 7_200 <= n * FRAME {
            s.push_audio(audio(next_audio));
            next_audio += 1;
        }
        events.extend(std::iter::from_fn(|| s.poll()));
    }
    let mut checked = 0;
    for event in &events {
        let Event::Part(part) = event else { continue };
        let moof = Moof::decode(&mut std::io::Cursor::new(&part.data[..])).unwrap();
        let end = |traf: &mp4_atom::Traf, timescale: u64| {
            let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            let total: u64 = traf.trun[0].samples.iter().map(|e| u64::from(e.duration.unwrap())).sum();
            (base + total) * 1_000_000 / timescale
        };
        let video_end = end(&moof.traf[0], 90_000);
        let Some(audio) = moof.traf.get(1) else { continue };
        let audio_end = end(audio, 48_000);
        // The audio reaches the part's end, overshooting by less than one AAC frame.
        assert!(
            audio_end >= video_end && audio_end < video_end + 21_334,
            "{part:?}: audio {audio_end} video {video_end}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
    // A segment start waiting behind a part is announced after it.
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentStarted { msn, .. } => Some(format!("start {msn}")),
            Event::SegmentClosed(s) => Some(format!("close {}", s.msn)),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec!["start 0", "close 0", "start 1"]);
}

#[test]
fn a_long_frame_gap_never_makes_a_part_exceed_the_target() {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 210, segment_target_ms: 2000 }, 0);
    s.set_tracks(ProgramTracks { audio: None, ..tracks(0x1f) });
    // 30 fps, but frames 10..=17 never came (a 300 ms gap after frame 9).
    for n in (0..60u64).filter(|n| !(10..=17).contains(n)) {
        s.push_video(video(n, n == 0));
    }
    s.finish();
    let mut parts = Vec::new();
    while let Some(event) = s.poll() {
        if let Event::Part(part) = event {
            assert!(part.duration_s <= 0.210 + 1e-9, "{part:?}");
            parts.push(part);
        }
    }
    // The frame after the gap keeps its decode time: find it as a part's tfdt.
    let starts: Vec<u64> = parts
        .iter()
        .map(|p| {
            let moof = Moof::decode(&mut std::io::Cursor::new(&p.data[..])).unwrap();
            moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time
        })
        .collect();
    assert!(starts.contains(&(18 * FRAME)), "{starts:?}");
}

#[test]
fn jittery_frames_make_parts_in_the_window_on_a_timeline_close_to_the_input() {
    // 17 fps (no whole number of frames fits 200 ms) with ±10 ms of jitter, a keyframe
    // every 34 frames, and 48 kHz audio: what a loaded Chromium publisher sends.
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
    s.set_tracks(tracks(0x1f));
    let mut state = 0x9e37_79b9_u64;
    let mut input_dts = Vec::new();
    let mut dts = 0u64;
    let mut next_audio = 0u64;
    for n in 0..400u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        dts += 5_294 - 900 + state % 1_801;
        input_dts.push(dts);
        while next_audio * 1024 * 90_000 / 48_000 <= dts {
            s.push_audio(TimedSample { dts: next_audio * 1024, ..audio(next_audio) });
            next_audio += 1;
        }
        s.push_video(TimedSample {
            dts,
            duration: None,
            keyframe: n % 34 == 0,
            program_time_ms: 0,
            data: Bytes::copy_from_slice(&n.to_be_bytes()),
        });
    }
    s.finish();
    let events: Vec<Event> = std::iter::from_fn(|| s.poll()).collect();
    let mut by_segment: std::collections::BTreeMap<u64, Vec<&PartReady>> = Default::default();
    for event in &events {
        if let Event::Part(part) = event {
            by_segment.entry(part.msn).or_default().push(part);
        }
    }
    assert!(by_segment.len() >= 10, "{}", by_segment.len());
    let mut previous_end = 0u64;
    for parts in by_segment.values() {
        for (i, part) in parts.iter().enumerate() {
            assert!(part.duration_s <= 0.2 + 1e-9, "{part:?}");
            if i + 1 < parts.len() {
                assert!(part.duration_s >= 0.17 - 1e-9, "part {} of {}: {}", i, part.msn, part.duration_s);
            }
            // Each frame's output time stays within 40 ms of its input time, and the
            // timeline never steps back.
            let mut input = std::io::Cursor::new(&part.data[..]);
            let moof = Moof::decode(&mut input).unwrap();
            let moof_len = input.position() as usize;
            let mdat = Mdat::decode(&mut input).unwrap();
            let traf = &moof.traf[0];
            let mut t = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            assert!(t >= previous_end, "timeline stepped back at part {}.{}", part.msn, i);
            let mut offset = 0;
            let data_start = traf.trun[0].data_offset.unwrap() as usize - moof_len - 8;
            for entry in &traf.trun[0].samples {
                let size = entry.size.unwrap() as usize;
                let at = data_start + offset;
                let n = u64::from_be_bytes(mdat.data[at..at + 8].try_into().unwrap()) as usize;
                let skew = t as i64 - input_dts[n] as i64;
                assert!(skew.abs() <= 3_600, "frame {n} is {skew} ticks off its input time");
                offset += size;
                t += u64::from(entry.duration.unwrap());
            }
            previous_end = t;
        }
    }
}

#[test]
fn without_keyframes_the_segment_grows_and_keeps_asking() {
    let events = run(5, 1000);
    let asks = events.iter().filter(|e| matches!(e, Event::KeyframeWanted)).count();
    assert_eq!(asks, 4, "at 1.8 s, then every second");
    let segments: Vec<&SegmentReady> =
        events.iter().filter_map(|e| if let Event::SegmentClosed(s) = e { Some(s) } else { None }).collect();
    assert_eq!(segments.len(), 1);
    // It ends where the audio does: less than a video frame before the video's 5 s.
    assert!((segments[0].duration_s - 5.0).abs() < 0.034, "{}", segments[0].duration_s);
}

#[test]
fn an_early_keyframe_does_not_cut_a_short_segment() {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
    s.set_tracks(tracks(0x1f));
    for n in 0..90 {
        s.push_video(video(n, n == 0 || n == 30 || n == 57));
    }
    let closed: Vec<f64> = std::iter::from_fn(|| s.poll())
        .filter_map(|e| if let Event::SegmentClosed(seg) = e { Some(seg.duration_s) } else { None })
        .collect();
    assert_eq!(closed.len(), 1);
    assert!((closed[0] - 1.9).abs() < 1e-9, "cut at the keyframe of 1.9 s, not at 1.0 s: {closed:?}");
}

#[test]
fn a_resumed_program_continues_the_numbers_after_a_discontinuity() {
    let mut s = Segmenter::resume(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 42, 3);
    s.set_tracks(tracks(0x1f));
    for n in 0..10 {
        s.push_video(video(n, n == 0));
    }
    let events: Vec<Event> = std::iter::from_fn(|| s.poll()).collect();
    assert!(matches!(events[0], Event::Init { id: 4, .. }), "{:?}", events[0]);
    assert!(matches!(events[1], Event::SegmentStarted { msn: 42, discontinuity: true, init_id: 4, .. }));
}

#[test]
fn new_parameters_make_a_discontinuity_with_a_new_init_section() {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 7);
    s.set_tracks(tracks(0x1f));
    for n in 0..20 {
        s.push_video(video(n, n == 0));
    }
    s.set_tracks(tracks(0x28));
    s.push_video(video(20, false)); // dropped: the new track starts at a keyframe
    for n in 21..40 {
        s.push_video(video(n, n == 21));
    }
    let events: Vec<Event> = std::iter::from_fn(|| s.poll()).collect();
    let inits: Vec<u32> =
        events.iter().filter_map(|e| if let Event::Init { id, .. } = e { Some(*id) } else { None }).collect();
    assert_eq!(inits, vec![1, 2]);
    let closed: Vec<&SegmentReady> =
        events.iter().filter_map(|e| if let Event::SegmentClosed(s) = e { Some(s) } else { None }).collect();
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].msn, closed[0].init_id, closed[0].discontinuity), (7, 1, false));
    assert!((closed[0].duration_s - 20.0 / 30.0).abs() < 1e-9);
    assert!(events.iter().any(|e| matches!(e, Event::SegmentStarted { msn: 8, discontinuity: true, init_id: 2, .. })));
}

#[test]
fn at_the_end_video_stops_where_the_audio_does() {
    // Lags up to AUDIO_WAIT (250 ms), the longest a part waits for its audio.
    for lag_ticks in [1_000u64, 7_200, 20_000] {
        let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
        s.set_tracks(tracks(0x1f));
        let mut next_audio = 0u64;
        for n in 0..50u64 {
            s.push_video(video(n, n == 0));
            // Audio lags behind the video, as out of the transcoder.
            while (next_audio * 1024 * 90_000 / 48_000) + lag_ticks <= n * FRAME {
                s.push_audio(audio(next_audio));
                next_audio += 1;
            }
        }
        s.finish();
        let events: Vec<Event> = std::iter::from_fn(|| s.poll()).collect();
        let last = events.iter().filter_map(|e| if let Event::Part(p) = e { Some(p) } else { None }).last().unwrap();
        let moof = Moof::decode(&mut std::io::Cursor::new(&last.data[..])).unwrap();
        let end = |traf: &mp4_atom::Traf, timescale: u64| {
            let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            let total: u64 = traf.trun[0].samples.iter().map(|e| u64::from(e.duration.unwrap())).sum();
            (base + total) * 1_000_000 / timescale
        };
        assert_eq!(moof.traf.len(), 2, "lag {lag_ticks}: the last part has both tracks");
        let (video_end, audio_end) = (end(&moof.traf[0], 90_000), end(&moof.traf[1], 48_000));
        assert!(video_end <= audio_end && audio_end - video_end < 1_000, "video {video_end} us, audio {audio_end} us");
        // No segment without parts is announced as closed.
        assert!(events.iter().all(|e| !matches!(e, Event::SegmentClosed(seg) if seg.parts == 0)));
    }
}
