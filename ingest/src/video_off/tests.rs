//! Real publishers' RTP (the captures in tests/data) through [`VideoOff`] as a publisher
//! session drives it: the packets subscribers get form one gapless sequence that our own
//! depacketizer takes without a loss, and FFmpeg decodes it to the same number of pictures,
//! black exactly where the video was off.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::h264::{H264Depacketizer, RtpRef, starts_keyframe};

fn capture(bytes: &[u8]) -> Vec<(u16, u32, bool, Vec<u8>)> {
    let mut packets = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let raw = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let mut header = 12 + 4 * usize::from(raw[0] & 0x0f);
        if raw[0] & 0x10 != 0 {
            header += 4 + 4 * usize::from(u16::from_be_bytes([raw[header + 2], raw[header + 3]]));
        }
        let seq = u16::from_be_bytes([raw[2], raw[3]]);
        let ts = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        packets.push((seq, ts, raw[1] & 0x80 != 0, raw[header..].to_vec()));
    }
    packets
}

/// What came out of one run: packets for subscribers, and per access unit whether it was
/// blanked and whether the presenter made it a keyframe.
struct Run {
    sent: Vec<(u16, u32, bool, Bytes)>,
    blanked: Vec<bool>,
    keyframes: Vec<bool>,
}

fn run(packets: &[(u16, u32, bool, Vec<u8>)], off: impl Fn(usize) -> bool) -> Run {
    let mut video_off = VideoOff::new();
    let mut depacketizer = H264Depacketizer::new();
    let mut run = Run { sent: Vec::new(), blanked: Vec::new(), keyframes: Vec::new() };
    let mut access_units_started = 0;
    let mut last_ts = None;
    for (seq, ts, marker, payload) in packets {
        if last_ts != Some(*ts) {
            last_ts = Some(*ts);
            access_units_started += 1;
        }
        let verdict = video_off.on_packet(*seq, *ts, starts_keyframe(payload), off(access_units_started - 1));
        depacketizer.push(RtpRef { sequence_number: *seq, timestamp: *ts, marker: *marker, payload }).unwrap();
        while let Some(au) = depacketizer.pull() {
            let (sps, pps) = depacketizer.parameters().unwrap();
            run.keyframes.push(au.keyframe);
            match video_off.on_access_unit(au.rtp_timestamp, au.keyframe, &sps, &pps) {
                Some(blanked) => {
                    assert!(blanked.avcc.is_some());
                    run.sent.extend(blanked.packets.into_iter().map(|(s, m, p)| (s, au.rtp_timestamp, m, p)));
                    run.blanked.push(true);
                }
                None => run.blanked.push(false),
            }
        }
        if verdict == Verdict::Forward {
            run.sent.push((video_off.out_seq(*seq), *ts, *marker, Bytes::copy_from_slice(payload)));
        }
    }
    run
}

/// Depacketizes what subscribers got and decodes it with FFmpeg: yuv420p frames.
fn decode_sent(sent: &[(u16, u32, bool, Bytes)], width: usize, height: usize) -> Vec<Vec<u8>> {
    for pair in sent.windows(2) {
        assert_eq!(pair[1].0, pair[0].0.wrapping_add(1), "one gapless sequence");
    }
    let mut depacketizer = H264Depacketizer::new();
    let mut annex_b = Vec::new();
    for (seq, ts, marker, payload) in sent {
        depacketizer.push(RtpRef { sequence_number: *seq, timestamp: *ts, marker: *marker, payload }).unwrap();
        while let Some(au) = depacketizer.pull() {
            if let Some((sps, pps)) = au.new_parameters {
                for nal in [sps, pps] {
                    annex_b.extend_from_slice(&[0, 0, 0, 1]);
                    annex_b.extend_from_slice(&nal);
                }
            }
            let mut rest = &au.data[..];
            while !rest.is_empty() {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                annex_b.extend_from_slice(&[0, 0, 0, 1]);
                annex_b.extend_from_slice(&rest[4..4 + len]);
                rest = &rest[4 + len..];
            }
        }
    }
    assert_eq!(depacketizer.dropped_access_units, 0);
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
        .expect("Debian's ffmpeg on PATH");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&annex_b));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && log.trim().is_empty(), "decoder: {log}");
    output.stdout.chunks(width * height * 3 / 2).map(<[u8]>::to_vec).collect()
}

fn is_black(frame: &[u8], width: usize, height: usize) -> bool {
    let (luma, chroma) = frame.split_at(width * height);
    luma.iter().all(|&y| y == 16) && chroma.iter().all(|&c| c == 128)
}

#[test]
fn ffmpeg9_libx264_off_then_on_again_at_the_next_keyframe() {
    let packets = capture(include_bytes!("../../../tests/data/ffmpeg9_libx264_baseline_320x180.rtp"));
    let run = run(&packets, |au| (5..20).contains(&au));
    // Off from the 6th access unit; on again from the first keyframe at or after the 21st.
    let back = (20..run.keyframes.len()).find(|&i| run.keyframes[i]).unwrap_or(run.keyframes.len());
    assert_eq!(back, 30, "the capture's second keyframe");
    let expected: Vec<bool> = (0..run.keyframes.len()).map(|i| (5..back).contains(&i)).collect();
    assert_eq!(run.blanked, expected);
    let frames = decode_sent(&run.sent, 320, 180);
    assert_eq!(frames.len(), run.blanked.len(), "every access unit decodes");
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(is_black(frame, 320, 180), run.blanked[i], "access unit {i}");
    }
}

#[test]
fn chromium156_openh264_off_to_the_end() {
    let packets = capture(include_bytes!("../../../tests/data/chromium156_h264_640x480.rtp"));
    let run = run(&packets, |au| au >= 3);
    assert!(run.blanked[3..].iter().all(|&b| b) && !run.blanked[..3].iter().any(|&b| b));
    let frames = decode_sent(&run.sent, 640, 480);
    assert_eq!(frames.len(), run.blanked.len());
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(is_black(frame, 640, 480), run.blanked[i], "access unit {i}");
    }
}

#[test]
fn large_nal_units_go_in_fu_a_fragments() {
    let nal = Bytes::from((0..3000).map(|i| if i == 0 { 0x65 } else { (i % 251) as u8 }).collect::<Vec<u8>>());
    let small = Bytes::from_static(&[0x67, 1, 2]);
    let payloads = packetize(&[small.clone(), nal.clone()], 1200);
    assert_eq!(payloads[0], small);
    assert_eq!(payloads.len(), 1 + 3);
    assert!(payloads.iter().all(|p| p.len() <= 1200));
    assert_eq!((payloads[1][0], payloads[1][1]), (0x7c, 0x85));
    assert_eq!(payloads[3][1], 0x45);
    let body: Vec<u8> = payloads[1..].iter().flat_map(|p| p[2..].to_vec()).collect();
    assert_eq!(&body[..], &nal[1..]);
}

#[test]
fn a_late_packet_changes_nothing() {
    let mut v = VideoOff::new();
    assert_eq!(v.on_packet(10, 3000, true, false), Verdict::Forward);
    assert_eq!(v.on_packet(11, 6000, false, true), Verdict::Hold);
    assert_eq!(v.on_packet(12, 6000, false, true), Verdict::Hold);
    // Seq 9 of an older frame arrives late, then the frame goes on.
    assert_eq!(v.on_packet(9, 3000, false, true), Verdict::Hold);
    assert_eq!(v.on_packet(13, 6000, false, true), Verdict::Hold);
    assert_eq!(v.held.len(), 1, "one held access unit: {:?}", v.held);
    assert_eq!((v.held[0].first_seq, v.held[0].last_seq), (11, 13));
    // Turned on: a late keyframe packet does not end the black.
    assert_eq!(v.on_packet(8, 0, true, false), Verdict::Hold);
    assert!(v.is_blanking());
    assert_eq!(v.on_packet(14, 9000, true, false), Verdict::Forward);
}
