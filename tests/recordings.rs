//! Recordings: the host marks a range of the program; it downloads as one MP4 (remuxed from
//! the stored segments, no re-encode) that ffprobe and ffmpeg read with the expected duration
//! (within one part), and plays as VOD HLS. Bad input gets precise errors; recordings survive
//! a restart.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::hls::{check_playlists, ffprobe_streams, wait_program};
use common::{Server, ffmpeg_publish};

/// Sum of EXTINF durations minus EXT-X-START's offset: the recording's length by its playlist.
fn playlist_duration(playlist: &str) -> f64 {
    let value =
        |line: &str, prefix: &str| -> Option<f64> { line.strip_prefix(prefix)?.split([',', ' ']).next()?.parse().ok() };
    let total: f64 = playlist.lines().filter_map(|l| value(l, "#EXTINF:")).sum();
    let offset = playlist.lines().find_map(|l| value(l, "#EXT-X-START:TIME-OFFSET=")).unwrap_or(0.0);
    total - offset
}

fn ffprobe_duration(path: &std::path::Path) -> f64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
}

/// Decodes all of `input` with Debian's ffmpeg; returns what it complained about.
fn decode_errors(input: &str) -> String {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i", input, "-f", "null", "-"])
        .output()
        .expect("ffmpeg (Debian's package)");
    assert!(output.status.success(), "ffmpeg could not decode {input}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_recording_downloads_as_one_mp4_and_plays_as_vod_hls() {
    let server = Server::start();
    let room = server.create_room();
    let host = format!("Bearer {}", room.host_token);
    let recordings = format!("/api/rooms/{}/recordings", room.id);
    let json = [("Authorization", host.as_str()), ("Content-Type", "application/json")];
    let act = |s: &Server, action: &str| {
        s.request("POST", &recordings, &json, format!(r#"{{"action":"{action}"}}"#).as_bytes())
    };

    // Nothing to record before the program runs.
    act(&server, "start").assert_problem(409, "not_live");
    let _publisher = ffmpeg_publish(&server, &room, "main", 90);
    wait_program(&server, &room);

    // Bad input, each with its own answer.
    server.request("POST", &recordings, &[], br#"{"action":"start"}"#).assert_problem(401, "unauthorized");
    server.request("POST", &recordings, &json, b"{nope").assert_problem(400, "malformed_json");
    act(&server, "pause").assert_problem(400, "malformed_json");
    act(&server, "stop").assert_problem(409, "not_recording");
    server.request("GET", &format!("{recordings}/rec-none.mp4"), &[], b"").assert_problem(404, "unknown_recording");
    server.request("GET", "/api/rooms/nowhere/recordings", &json, b"").assert_problem(404, "unknown_room");

    let started = act(&server, "start");
    assert_eq!(started.status, 201, "{}", started.text());
    let began = Instant::now();
    let recording = started.json();
    assert_eq!(recording["state"], "recording");
    act(&server, "start").assert_problem(409, "already_recording");
    let id = recording["id"].as_str().unwrap().to_owned();
    let mp4_path = format!("{recordings}/{id}.mp4");
    server.request("GET", &mp4_path, &[], b"").assert_problem(409, "recording_not_ready");

    // Record about eight seconds of the program.
    server
        .wait_for("eight seconds of recording", Duration::from_secs(30), |_| began.elapsed() >= Duration::from_secs(8));
    let stopped = act(&server, "stop");
    let recorded = began.elapsed().as_secs_f64();
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    server.wait_for("the recording to be ready", Duration::from_secs(30), |s| {
        s.request("GET", &format!("{recordings}/{id}"), &json, b"").json()["state"] == "ready"
    });

    // VOD HLS: strict checks, ffmpeg decodes it all, and its length is what was recorded.
    let m3u8_url = server.url(&format!("{recordings}/{id}.m3u8"));
    let playlist = server.request("GET", &format!("{recordings}/{id}.m3u8"), &[], b"").text();
    check_playlists("replay", &[("recording".to_owned(), playlist.clone())]);
    let expected = playlist_duration(&playlist);
    assert!(
        (expected - recorded).abs() < 0.8,
        "recorded {recorded:.2} s of wall time, the playlist says {expected:.2} s"
    );
    let streams = ffprobe_streams(&m3u8_url);
    assert!(streams.iter().any(|s| s["codec_name"] == "h264") && streams.iter().any(|s| s["codec_name"] == "aac"));
    decode_errors(&m3u8_url);

    // The MP4: one file, H.264 + AAC, the expected duration within one part, decodes cleanly.
    let download = server.request("GET", &mp4_path, &[], b"");
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.header("content-type"), Some("video/mp4"));
    assert_eq!(download.header("content-length").map(str::to_owned), Some(download.body.len().to_string()));
    let file = server.data_dir.join("download.mp4");
    std::fs::write(&file, &download.body).unwrap();
    let duration = ffprobe_duration(&file);
    eprintln!("recorded {recorded:.3} s of wall time; playlist {expected:.3} s; MP4 {duration:.3} s");
    assert!((duration - expected).abs() <= 0.2 + 1e-3, "MP4 of {duration:.3} s, expected {expected:.3} s (one part)");
    let streams = ffprobe_streams(file.to_str().unwrap());
    assert!(streams.iter().any(|s| s["codec_name"] == "h264") && streams.iter().any(|s| s["codec_name"] == "aac"));
    let complaints = decode_errors(file.to_str().unwrap());
    assert!(complaints.trim().is_empty(), "ffmpeg complained: {complaints}");

    // A second recording, then a restart: both are still listed and the first still downloads.
    assert_eq!(act(&server, "start").status, 201);
    assert_eq!(act(&server, "stop").status, 200);
    let dir = server.kill_keeping_data();
    let server = Server::start_in(dir, &[]);
    let list = server.request("GET", &recordings, &json, b"").json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let again = server.request("GET", &mp4_path, &[], b"");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.body, download.body, "the same bytes after a restart");
}
