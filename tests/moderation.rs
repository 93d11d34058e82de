//! Moderation of the stage through the real binary, with an ffmpeg 9 WHIP publisher sending a
//! sine tone: the host mutes the presenter and the program's audio becomes silence (measured by
//! ffmpeg's volumedetect on the newest segment), unmutes and the tone is back, then takes the
//! presenter off the stage; the room's WebSockets are told each time.

mod common;

use std::process::Command;
use std::time::Duration;

use common::hls::{segments_after, wait_program};
use common::ws::WsClient;
use common::{Room, Server, ffmpeg_publish};

/// The loudest sample (dB) of the newest complete segment of the live playlist, decoded by
/// Debian's ffmpeg from its init section and segment.
fn newest_segment_max_volume(server: &Server, room: &Room, after_msn: u64) -> (u64, f64) {
    let live = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    let mut init = None;
    let mut newest = None;
    for line in live.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init = Some(uri.trim_end_matches('"').to_owned());
        } else if let Some(msn) = line.strip_prefix("seg-").and_then(|l| l.strip_suffix(".m4s")) {
            newest = Some((msn.parse::<u64>().unwrap(), init.clone().unwrap()));
        }
    }
    let (msn, init) = newest.expect("a complete segment");
    assert!(msn > after_msn, "no segment after {after_msn} yet");
    let mut bytes = server.request("GET", &format!("/hls/{}/{init}", room.id), &[], b"").body;
    bytes.extend(server.request("GET", &format!("/hls/{}/seg-{msn}.m4s", room.id), &[], b"").body);
    let file = server.data_dir.join(format!("probe-{msn}.mp4"));
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(&file)
        .args(["-map", "0:a", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let log = String::from_utf8_lossy(&output.stderr);
    let max = log
        .lines()
        .find_map(|l| l.split("max_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no max_volume in {log}"));
    (msn, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_presenter_is_heard_as_silence_and_a_removed_one_leaves_the_stage() {
    let server = Server::start();
    let room = server.create_room();
    let _publisher = ffmpeg_publish(&server, &room, "main", 120);
    wait_program(&server, &room);
    let host = format!("Bearer {}", room.host_token);
    let mut watcher = WsClient::connect(&server, &room.id, "name=Watcher").await;
    let audio = format!("/api/rooms/{}/presenters/main/audio", room.id);

    let start = segments_after(&server, &room, 0, 1);
    let (msn, loud) = newest_segment_max_volume(&server, &room, start - 1);
    assert!(loud > -30.0, "the tone before muting: {loud} dB");

    let muted = server.request("POST", &audio, &[("Authorization", &host)], br#"{"muted":true}"#);
    assert_eq!(muted.status, 200, "{}", muted.text());
    assert_eq!(watcher.next_of("presenter_audio").await["muted"], true);
    // Two segments later, everything in the newest one was captured after the mute.
    let after = segments_after(&server, &room, msn, 2);
    let (_, silent) = newest_segment_max_volume(&server, &room, after - 1);
    assert!(silent < -60.0, "muted: {silent} dB");

    let unmuted = server.request("POST", &audio, &[("Authorization", &host)], br#"{"muted":false}"#);
    assert_eq!(unmuted.status, 200, "{}", unmuted.text());
    assert_eq!(watcher.next_of("presenter_audio").await["muted"], false);
    let again = segments_after(&server, &room, after, 2);
    let (_, back) = newest_segment_max_volume(&server, &room, again - 1);
    assert!(back > -30.0, "unmuted: {back} dB");

    // Bad requests, and an attendee cannot moderate.
    server
        .request(
            "POST",
            &format!("/api/rooms/{}/presenters/nobody/audio", room.id),
            &[("Authorization", &host)],
            br#"{"muted":true}"#,
        )
        .assert_problem(404, "unknown_presenter");
    server.request("POST", &audio, &[("Authorization", &host)], br#"{"mute":1}"#).assert_problem(400, "malformed_json");
    let attendee = format!("Bearer {}", watcher.token());
    server
        .request("POST", &audio, &[("Authorization", &attendee)], br#"{"muted":true}"#)
        .assert_problem(403, "forbidden");

    // Off the stage: the session ends, the room says so, the WebSockets are told.
    let presenter = format!("/api/rooms/{}/presenters/main", room.id);
    let removed = server.request("DELETE", &presenter, &[("Authorization", &host)], b"");
    assert_eq!(removed.status, 204, "{}", removed.text());
    assert_eq!(watcher.next_of("presenter_removed").await["presenter"], "main");
    let room_path = format!("/api/rooms/{}", room.id);
    server.wait_for("the presenter to leave the stage", Duration::from_secs(30), |s| {
        let view = s.request("GET", &room_path, &[("Authorization", &host)], b"").json();
        view["presenters"].as_array().unwrap().iter().all(|p| p["live"] == false)
    });
    server.request("DELETE", &presenter, &[("Authorization", &host)], b"").assert_problem(404, "unknown_presenter");
}
