//! Replay retention: with `hls.replay_retention_days`, a replay whose last segment is older
//! than that is removed whole (files, playlist, recordings), a recent one stays, and the
//! room's numbering goes on after the removed replay: the next program never reuses a media
//! sequence number.

mod common;

use std::path::Path;
use std::time::Duration;

use common::hls::wait_program;
use common::{Server, ffmpeg_publish};

const DAY_MS: i64 = 86_400_000;

/// Writes a one-segment replay whose segment is `age_days` old, as the program would have.
fn fake_replay(dir: &Path, msn: u64, age_days: i64, ended: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    std::fs::write(dir.join("init-3.mp4"), b"init").unwrap();
    std::fs::write(dir.join(format!("seg-{msn}.m4s")), b"segment").unwrap();
    let mut line = format!(
        "{{\"kind\":\"segment\",\"msn\":{msn},\"program_time_ms\":{},\"discontinuity\":false,\"init_id\":3,\"duration_s\":2.0}}\n",
        now - age_days * DAY_MS
    );
    if ended {
        line.push_str("{\"kind\":\"ended\"}\n");
    }
    std::fs::write(dir.join("replay.jsonl"), line).unwrap();
}

#[test]
fn old_replays_are_removed_and_numbering_goes_on() {
    let server = Server::start();
    let old = server.create_room();
    let recent = server.create_room();
    let data = server.kill_keeping_data();
    fake_replay(&data.join("hls").join(&old.id), 41, 40, false);
    fake_replay(&data.join("hls").join(&recent.id), 7, 1, true);

    let server = Server::start_in(data.clone(), &[("TOWNHALL_HLS_REPLAY_RETENTION_DAYS", "30")]);
    let old_dir = data.join("hls").join(&old.id);
    server.wait_for("the old replay to be removed", Duration::from_secs(60), |s| {
        s.request("GET", &format!("/hls/{}/replay.m3u8", old.id), &[], b"").status == 404
            && !old_dir.join("seg-41.m4s").exists()
    });
    assert!(!old_dir.join("init-3.mp4").exists());
    let index = std::fs::read_to_string(old_dir.join("replay.jsonl")).unwrap();
    assert!(index.contains(r#""kind":"retired","next_msn":42,"last_init_id":3"#), "{index}");
    let kept = server.request("GET", &format!("/hls/{}/replay.m3u8", recent.id), &[], b"");
    assert_eq!(kept.status, 200);
    assert!(kept.text().contains("seg-7.m4s"), "{}", kept.text());

    // After a restart, a new program in the old room goes on after the removed replay.
    let data = server.kill_keeping_data();
    let server = Server::start_in(data, &[("TOWNHALL_HLS_REPLAY_RETENTION_DAYS", "30")]);
    let _publisher = ffmpeg_publish(&server, &old, "main", 40);
    wait_program(&server, &old);
    let live = server.request("GET", &format!("/hls/{}/live.m3u8", old.id), &[], b"").text();
    assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:42\n"), "numbering goes on at 42: {live}");
    assert!(live.contains("init-4.mp4"), "init sections too: {live}");
}
