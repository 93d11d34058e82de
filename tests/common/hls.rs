//! LL-HLS helpers of the end-to-end tests: wait for a room's program, play it in hls.js (the
//! watch page in headless Chromium), probe it with ffprobe, and check playlists with npm
//! hls-parser in strict mode (`scripts/clients/check_playlist.mjs`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Client, Room, Server, root};

pub fn wait_program(server: &Server, room: &Room) {
    let path = format!("/hls/{}/index.m3u8", room.id);
    server.wait_for("the program's first segment", Duration::from_secs(90), |s| {
        s.request("GET", &path, &[], b"").status == 200
            && s.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text().contains("#EXTINF")
    });
}

/// The newest segment number once `count` more segments than `msn` exist.
pub fn segments_after(server: &Server, room: &Room, msn: u64, count: u64) -> u64 {
    let mut newest = msn;
    server.wait_for("new segments", Duration::from_secs(60), |s| {
        let live = s.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
        newest = live
            .lines()
            .filter_map(|l| l.strip_prefix("seg-").and_then(|l| l.strip_suffix(".m4s")))
            .filter_map(|n| n.parse().ok())
            .max()
            .unwrap_or(0);
        newest >= msn + count
    });
    newest
}

/// Writes playlists to files and runs check_playlist.mjs on them; panics with its problems.
pub fn check_playlists(kind: &str, playlists: &[(String, String)]) {
    let dir = std::env::temp_dir().join(format!("townhall-playlists-{}-{kind}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = playlists
        .iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let path = dir.join(format!("{i}-{name}.m3u8"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let output = Command::new("node")
        .arg(root().join("scripts/clients/check_playlist.mjs"))
        .arg(kind)
        .args(&files)
        .output()
        .expect("node");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "playlist checks failed: {report}");
    let _ = std::fs::remove_dir_all(dir);
}

pub fn watch(server: &Server, room: &Room, query: &str, min_play: u32, seconds: u32) -> serde_json::Value {
    let url = server.url(&format!("/watch/{}{query}", room.id));
    Client::spawn(
        "hls.js in Chromium",
        std::path::Path::new("node"),
        &[
            root().join("scripts/clients/browser.mjs").to_str().unwrap(),
            "watch",
            &url,
            "--seconds",
            &seconds.to_string(),
            "--min-play",
            &min_play.to_string(),
        ],
    )
    .finish(Duration::from_secs(u64::from(seconds) + 60))
}

pub fn ffprobe_streams(url: &str) -> Vec<serde_json::Value> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,start_time,width,height", "-of", "json", url])
        .output()
        .expect("ffprobe (Debian's ffmpeg package)");
    assert!(output.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["streams"].as_array().unwrap().clone()
}
