//! Black pictures spliced into real encoders' streams (libx264 through Debian's `ffmpeg`, the
//! SPS/PPS of Chromium's OpenH264), decoded by FFmpeg's H.264 decoder: every black picture
//! decodes to Y = 16, Cb = Cr = 128, nothing else changes, the frame count stays and the
//! decoder reports no error.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;

/// One access unit of an Annex B stream: its NAL units (without start codes).
struct AccessUnit {
    nals: Vec<Vec<u8>>,
    keyframe: bool,
}

fn split_annex_b(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut nals = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            if let Some(s) = start {
                let mut end = i;
                while end > s && stream[end - 1] == 0 {
                    end -= 1;
                }
                nals.push(stream[s..end].to_vec());
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(stream[s..].to_vec());
    }
    nals
}

/// Groups NAL units into access units: each VCL NAL unit (one slice per picture here) closes
/// one, with the non-VCL units before it.
fn access_units(nals: Vec<Vec<u8>>) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for nal in nals {
        let kind = nal[0] & 0x1f;
        pending.push(nal);
        if kind == 1 || kind == 5 {
            out.push(AccessUnit { nals: std::mem::take(&mut pending), keyframe: kind == 5 });
        }
    }
    out
}

fn encode(args: &[&str], frames: u32) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=176x144:rate=30"])
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "yuv420p", "-threads", "1", "-c:v", "libx264"])
        .args(args)
        .args(["-f", "h264", "-"])
        .output()
        .expect("Debian's ffmpeg on PATH");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// Decodes an Annex B stream to yuv420p frames; panics on any decoder message.
fn decode(stream: &[u8], width: usize, height: usize) -> Vec<Vec<u8>> {
    let mut child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "h264",
            "-i",
            "-",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    let mut stdin = child.stdin.take().unwrap();
    let input = stream.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && log.trim().is_empty(), "decoder: {log}");
    let size = width * height * 3 / 2;
    assert_eq!(output.stdout.len() % size, 0);
    output.stdout.chunks(size).map(<[u8]>::to_vec).collect()
}

fn is_black(frame: &[u8], width: usize, height: usize) -> bool {
    let (luma, chroma) = frame.split_at(width * height);
    luma.iter().all(|&y| y == 16) && chroma.iter().all(|&c| c == 128)
}

fn mean_luma(frame: &[u8], width: usize, height: usize) -> f64 {
    frame[..width * height].iter().map(|&y| f64::from(y)).sum::<f64>() / (width * height) as f64
}

/// Replaces the access units in `blank` (decode order) with black pictures and checks the
/// decoded result frame by frame.
fn splice_and_check(stream: &[u8], blank: std::ops::Range<usize>) -> Option<Bytes> {
    let units = access_units(split_annex_b(stream));
    let nals: Vec<&Vec<u8>> = units.iter().flat_map(|u| &u.nals).collect();
    let sps = nals.iter().find(|n| n[0] & 0x1f == 7).unwrap();
    let pps = nals.iter().find(|n| n[0] & 0x1f == 8).unwrap();
    let mut black = BlackPictures::new(sps, pps).unwrap();
    let mut out = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        if blank.contains(&i) {
            // The presenter's parameter sets stay where they were (a keyframe brings them).
            let params = unit.nals.iter().filter(|n| matches!(n[0] & 0x1f, 7 | 8));
            let pictures = black.next_picture(unit.keyframe);
            for nal in params.map(|n| &n[..]).chain(pictures.iter().map(|n| &n[..])) {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(nal);
            }
        } else {
            for nal in &unit.nals {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(nal);
            }
        }
    }
    let (w, h) = (176, 144);
    let frames = decode(&out, w, h);
    assert_eq!(frames.len(), units.len(), "frame count");
    for (i, frame) in frames.iter().enumerate() {
        if blank.contains(&i) {
            assert!(is_black(frame, w, h), "frame {i} is not black (mean Y {})", mean_luma(frame, w, h));
        } else {
            let y = mean_luma(frame, w, h);
            assert!((y - 16.0).abs() > 20.0, "frame {i} should be the picture, mean Y {y}");
        }
    }
    black.own_pps().cloned()
}

#[test]
fn black_in_libx264_baseline_cavlc_from_a_keyframe_to_a_keyframe() {
    // CAVLC, pic_order_cnt_type 2, keyframes every 10 frames: black from 10 to 29.
    let stream = encode(&["-profile:v", "baseline", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0"], 40);
    assert_eq!(splice_and_check(&stream, 10..30), None, "the presenter's own PPS");
}

#[test]
fn black_from_the_middle_of_a_group_of_pictures() {
    // The first black picture is an IDR even where the presenter sent a P picture.
    let stream = encode(&["-profile:v", "baseline", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0"], 30);
    splice_and_check(&stream, 5..20);
}

#[test]
fn black_in_libx264_main_cavlc_with_picture_order_count_lsb() {
    // CAVLC with B-frames: pic_order_cnt_type 0; black pictures keep the decode order.
    let stream = encode(
        &["-profile:v", "main", "-coder", "0", "-bf", "2", "-g", "12", "-keyint_min", "12", "-sc_threshold", "0"],
        36,
    );
    let sps = split_annex_b(&stream).into_iter().find(|n| n[0] & 0x1f == 7).unwrap();
    assert_eq!(parse_sps(&sps).unwrap().pic_order_cnt_type, 0);
    splice_and_check(&stream, 12..24);
}

#[test]
fn black_in_libx264_main_cabac_comes_with_a_cavlc_pps_of_our_own() {
    let stream = encode(&["-profile:v", "main", "-bf", "0", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0"], 30);
    let own = splice_and_check(&stream, 10..20).expect("a PPS of our own");
    let pps = parse_pps(&own).unwrap();
    assert_eq!(pps.pic_parameter_set_id, 255);
    assert!(!pps.entropy_coding_mode);
}

#[test]
fn black_alone_in_chromium_openh264_parameter_sets() {
    // SPS/PPS of Debian Chromium 156's fake camera (OpenH264, 640x480), from
    // tests/data/chromium156_h264_640x480.rtp.
    let sps =
        [0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd3, 0x50, 0x60, 0x60, 0x60, 0x78, 0x44, 0x23, 0x50];
    let pps = [0x68, 0xce, 0x3c, 0x80];
    let mut black = BlackPictures::new(&sps, &pps).unwrap();
    assert_eq!(black.own_pps(), None);
    let mut stream = Vec::new();
    for nal in [&sps[..], &pps[..]] {
        stream.extend_from_slice(&[0, 0, 0, 1]);
        stream.extend_from_slice(nal);
    }
    for i in 0..12 {
        for nal in black.next_picture(i % 6 == 0) {
            stream.extend_from_slice(&[0, 0, 0, 1]);
            stream.extend_from_slice(&nal);
        }
    }
    let frames = decode(&stream, 640, 480);
    assert_eq!(frames.len(), 12);
    assert!(frames.iter().all(|f| is_black(f, 640, 480)));
}

#[test]
fn a_black_keyframe_is_small_and_a_repeated_picture_tiny() {
    let stream = encode(&["-profile:v", "baseline"], 1);
    let nals = split_annex_b(&stream);
    let sps = nals.iter().find(|n| n[0] & 0x1f == 7).unwrap();
    let pps = nals.iter().find(|n| n[0] & 0x1f == 8).unwrap();
    let mut black = BlackPictures::new(sps, pps).unwrap();
    let idr = black.next_picture(true);
    // 99 macroblocks: 384 bytes of I_PCM, about a byte for each of the others.
    assert!(idr[0].len() < 600, "{}", idr[0].len());
    let p = black.next_picture(false);
    assert!(p[0].len() < 12, "{}", p[0].len());
    assert_eq!(to_avcc(&p).len(), p[0].len() + 4);
}

#[test]
fn refuses_what_it_cannot_write() {
    assert_eq!(BlackPictures::new(&[0x68], &[0x68]).unwrap_err(), BlackError::Sps);
    let sps =
        [0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd3, 0x50, 0x60, 0x60, 0x60, 0x78, 0x44, 0x23, 0x50];
    assert_eq!(BlackPictures::new(&sps, &[0x67]).unwrap_err(), BlackError::Pps);
}
