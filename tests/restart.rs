//! Restart safety: `kill -9` the server during a live event and start it again on the same
//! data dir. The room and its tokens still exist, the replay up to the crash is still listed
//! and plays, and a presenter who publishes again continues the same program after an
//! EXT-X-DISCONTINUITY, with media sequence numbers that go on (none reused). An event that
//! had ended stays ended (VOD) across a restart.

mod common;

use std::time::Duration;

use common::hls::{check_playlists, ffprobe_streams, wait_program, watch};
use common::{ADMIN_TOKEN, Server, ffmpeg_publish};

/// The media sequence numbers a playlist lists as whole segments, in order.
fn segment_numbers(playlist: &str) -> Vec<u64> {
    playlist.lines().filter_map(|l| l.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok()).collect()
}

#[test]
fn a_killed_server_keeps_its_replay_and_the_program_continues() {
    let server = Server::start();
    let room = server.create_room();
    let replay_path = format!("/hls/{}/replay.m3u8", room.id);
    let live_path = format!("/hls/{}/live.m3u8", room.id);
    let publisher = ffmpeg_publish(&server, &room, "main", 60);
    wait_program(&server, &room);
    server.wait_for("three segments in the replay", Duration::from_secs(60), |s| {
        segment_numbers(&s.request("GET", &replay_path, &[], b"").text()).len() >= 3
    });
    let before = segment_numbers(&server.request("GET", &replay_path, &[], b"").text());
    drop(publisher);
    let dir = server.kill_keeping_data();

    let server = Server::start_in(dir, &[]);
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let read = server.request("GET", &format!("/api/rooms/{}", room.id), &[("Authorization", &admin)], b"");
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["publish_token"], room.publish_token.as_str());

    // The replay lists everything it listed before the crash, and it decodes.
    let restored = server.request("GET", &replay_path, &[], b"");
    assert_eq!(restored.status, 200, "{}", restored.text());
    let restored_numbers = segment_numbers(&restored.text());
    assert!(before.iter().all(|msn| restored_numbers.contains(msn)), "before {before:?}, after {restored_numbers:?}");
    assert!(!restored.text().contains("#EXT-X-ENDLIST"), "the event has not ended: {}", restored.text());
    let streams = ffprobe_streams(&server.url(&replay_path));
    assert!(streams.iter().any(|s| s["codec_name"] == "h264"), "{streams:?}");
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"), "{streams:?}");

    // The presenter publishes again: the program continues after a discontinuity.
    let _again = ffmpeg_publish(&server, &room, "main", 60);
    wait_program(&server, &room);
    let last_before = *restored_numbers.last().unwrap();
    let live = server.request("GET", &live_path, &[], b"").text();
    let live_numbers = segment_numbers(&live);
    assert!(live_numbers.iter().all(|msn| *msn > last_before), "numbers go on after {last_before}: {live}");
    assert!(!live.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"), "the continuation is a discontinuity: {live}");
    server.wait_for("a new segment in the replay", Duration::from_secs(60), |s| {
        segment_numbers(&s.request("GET", &replay_path, &[], b"").text()).last() > Some(&last_before)
    });
    let replay = server.request("GET", &replay_path, &[], b"").text();
    let numbers = segment_numbers(&replay);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "no number listed twice or out of order: {numbers:?}");
    assert!(replay.contains("#EXT-X-DISCONTINUITY\n"), "{replay}");

    // The event ends: the replay plays from before the crash to its end, and stays VOD when
    // the server is killed again.
    let host = format!("Bearer {}", room.host_token);
    let end = server.request("POST", &format!("/api/rooms/{}/end", room.id), &[("Authorization", &host)], b"");
    assert_eq!(end.status, 200, "{}", end.text());
    let dir = server.kill_keeping_data();
    let server = Server::start_in(dir, &[]);
    let replay = server.request("GET", &replay_path, &[], b"").text();
    assert!(replay.contains("#EXT-X-PLAYLIST-TYPE:VOD") && replay.ends_with("#EXT-X-ENDLIST\n"), "{replay}");
    assert_eq!(segment_numbers(&replay)[0], before[0], "{replay}");
    check_playlists("replay", &[("restored".to_owned(), replay)]);
    let replayed = watch(&server, &room, "?replay", 1_000, 120);
    assert!(replayed["ended"].as_bool().unwrap(), "the replay plays to ENDLIST: {replayed}");
    assert!(replayed["fatal"].is_null(), "{replayed}");
    // The data dir is standard HLS on its own: the replay playlist sits beside its segments.
    let on_disk = std::fs::read_to_string(server.data_dir.join("hls").join(&room.id).join("replay.m3u8")).unwrap();
    assert!(on_disk.ends_with("#EXT-X-ENDLIST\n"), "{on_disk}");
}
