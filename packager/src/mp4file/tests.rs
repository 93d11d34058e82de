//! Tests of the mp4file (`super`), with an independent parser (mp4-atom, strict) reading
//! what it writes.

use super::*;
use crate::segmenter::tests::tracks;
use crate::segmenter::{Event, Segmenter, SegmenterConfig, TimedSample};
use bytes::Bytes;
use mp4_atom::{Any, DecodeMaybe, Moov, StszSamples};

/// 6 s of 30 fps video (keyframe every 2 s, each frame's data its number) and 48 kHz AAC
/// through the segmenter: the init section and the segments.
fn program() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut s = Segmenter::new(SegmenterConfig { part_target_ms: 200, segment_target_ms: 2000 }, 0);
    s.set_tracks(tracks(0x1f));
    let mut next_audio = 0u64;
    for n in 0..180u64 {
        // Audio starts 10 ms after the video.
        while 900 + next_audio * 1024 * 90_000 / 48_000 <= n * 3000 {
            s.push_audio(TimedSample {
                dts: 480 + next_audio * 1024,
                duration: Some(1024),
                keyframe: true,
                program_time_ms: 0,
                data: Bytes::from_static(b"aac!"),
            });
            next_audio += 1;
        }
        s.push_video(TimedSample {
            dts: n * 3000,
            duration: None,
            keyframe: n % 60 == 0,
            program_time_ms: 0,
            data: Bytes::copy_from_slice(&(n as u32).to_be_bytes()),
        });
    }
    s.finish();
    let mut init = Vec::new();
    let mut segments = Vec::new();
    while let Some(event) = s.poll() {
        match event {
            Event::Init { data, .. } => init = data.to_vec(),
            Event::SegmentClosed(segment) => segments.push(segment.data.to_vec()),
            _ => {}
        }
    }
    (init, segments)
}

/// Builds the whole file from a plan.
fn assemble(plan: &Mp4Plan, sources: &[Vec<u8>]) -> Vec<u8> {
    let mut file = plan.head.clone();
    for copy in &plan.copies {
        file.extend_from_slice(&sources[copy.source][copy.offset as usize..(copy.offset + copy.len) as usize]);
    }
    assert_eq!(file.len() as u64, plan.total_len);
    file
}

#[test]
fn segments_become_one_progressive_mp4_that_an_independent_parser_reads() {
    let (init, segments) = program();
    assert_eq!(segments.len(), 3);
    let tracks = parse_init(&init).unwrap();
    assert_eq!(tracks.len(), 2);
    assert!(tracks[0].is_video && tracks[0].timescale == 90_000 && tracks[0].width == 640);
    assert_eq!(&tracks[1].sample_entry[4..8], b"mp4a");
    let mut builder = Mp4Builder::new();
    for (source, segment) in segments.iter().enumerate().skip(1) {
        for fragment in parse_segment(segment).unwrap() {
            builder.add_fragment(source, &tracks, &fragment);
        }
    }
    // Present from 2.4 s: the file starts at the keyframe of 2.0 s.
    let plan = builder.finish(Some(2.4)).unwrap();
    // To the end of the shorter track: the audio, 17 ms before the video's 6.0 s.
    assert!((plan.duration_s - 3.6).abs() < 0.03, "{}", plan.duration_s);
    let file = assemble(&plan, &segments);

    let mut input = std::io::Cursor::new(&file[..]);
    let mut moov = None;
    let mut mdat_start = 0;
    while let Some(atom) = Any::decode_maybe(&mut input).unwrap() {
        match atom {
            Any::Moov(m) => moov = Some(m),
            Any::Mdat(_) => mdat_start = input.position() as usize,
            _ => {}
        }
    }
    let moov: Moov = moov.expect("a moov");
    assert!(mdat_start > 0);
    assert_eq!(moov.mvhd.duration, (plan.duration_s * 1000.0).round() as u64);
    let video = &moov.trak[0];
    let stbl = &video.mdia.minf.stbl;
    let StszSamples::Different { sizes } = &stbl.stsz.samples else { panic!("{:?}", stbl.stsz) };
    assert_eq!(sizes.len(), 120, "frames 60..180");
    let sync: Vec<u32> = stbl.stss.as_ref().unwrap().entries.clone();
    assert_eq!(sync, vec![1, 61]);
    // The first chunk's offset points at frame 60's data.
    let offsets = &stbl.co64.as_ref().unwrap().entries;
    let at = offsets[0] as usize;
    assert_eq!(&file[at..at + 4], &60u32.to_be_bytes());
    // Its edit list skips 0.4 s of media (from the keyframe to 2.4 s).
    let elst = &video.edts.as_ref().unwrap().elst.as_ref().unwrap().entries;
    assert_eq!(elst[0].media_time, Some(36_000));
    let audio = &moov.trak[1];
    let audio_elst = &audio.edts.as_ref().unwrap().elst.as_ref().unwrap().entries;
    let audio_first = 480 + 1024 * 94; // the first AAC frame of the second segment
    assert!((audio_elst[0].media_time.unwrap() as i64 - (2.4f64 * 48_000.0) as i64 + audio_first).abs() <= 1024);
    let audio_offset = audio.mdia.minf.stbl.co64.as_ref().unwrap().entries[0] as usize;
    assert_eq!(&file[audio_offset..audio_offset + 4], b"aac!");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(parse_init(b"").is_err());
    assert!(parse_init(&[0, 0, 0, 9, b'm', b'o', b'o', b'v', 0]).is_err());
    assert!(parse_segment(&[0, 0, 0, 200, b'm', b'o', b'o', b'f']).is_err());
    let (_, segments) = program();
    let mut broken = segments[0].clone();
    broken.truncate(broken.len() - 3); // into the last mdat
    assert!(parse_segment(&broken).is_err());
    for cut in [9, 17, 30, 60, 100] {
        let _ = parse_segment(&segments[0][..cut]);
    }
    assert_eq!(Mp4Builder::new().finish(None), Err(Mp4Error::Empty));
}
