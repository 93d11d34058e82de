//! "Turn off their video" through the real binary, with an ffmpeg 9 WHIP publisher (testsrc2,
//! colourful, and a sine tone): the host turns the presenter's video off and the program's
//! newest segments decode (Debian's ffmpeg) to black pictures only, as many as they carry
//! samples, with the tone still there; an aiortc WHEP viewer of that presenter decodes only
//! black; the strict playlist checker still accepts the live playlist; the presenter publishes
//! again and stays black; turned on again, the picture is back on both. The room's WebSockets are told each time; the room view says so;
//! bad requests and callers are refused.

mod common;

use std::process::Command;
use std::time::Duration;

use common::hls::{check_playlists, segments_after, wait_program};
use common::ws::WsClient;
use common::{Room, Server, aiortc_play, chromium_publish, ffmpeg_publish};
use serde_json::json;

/// The two scenarios publish and decode at once otherwise: one at a time on two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The newest complete segment of the live playlist, with its init section, as one file.
fn newest_segment(server: &Server, room: &Room) -> (u64, std::path::PathBuf) {
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
    let mut bytes = server.request("GET", &format!("/hls/{}/{init}", room.id), &[], b"").body;
    bytes.extend(server.request("GET", &format!("/hls/{}/seg-{msn}.m4s", room.id), &[], b"").body);
    let file = server.data_dir.join(format!("probe-{msn}.mp4"));
    std::fs::write(&file, bytes).unwrap();
    (msn, file)
}

/// What one segment decodes to.
#[derive(Debug)]
struct Decoded {
    msn: u64,
    samples: usize,
    frames: usize,
    black: usize,
    mean_luma: f64,
    max_volume_db: f64,
}

fn decode_newest(server: &Server, room: &Room) -> Decoded {
    let (msn, file) = newest_segment(server, room);
    let size = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let size = String::from_utf8_lossy(&size.stdout).trim().to_owned();
    let (width, height) = size.split_once(',').expect("a picture size");
    let (width, height): (usize, usize) = (width.parse().unwrap(), height.parse().unwrap());
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries"])
        .args(["stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let samples: usize = String::from_utf8_lossy(&probe.stdout).trim().parse().expect("a packet count");
    let video = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&file)
        .args(["-map", "0:v", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&video.stderr);
    assert!(video.status.success() && errors.trim().is_empty(), "segment {msn} decodes with errors: {errors}");
    let size = width * height * 3 / 2;
    assert_eq!(video.stdout.len() % size, 0, "{width}x{height} pictures");
    let lumas: Vec<f64> = video
        .stdout
        .chunks(size)
        .map(|f| f[..width * height].iter().map(|&y| f64::from(y)).sum::<f64>() / (width * height) as f64)
        .collect();
    let black = video
        .stdout
        .chunks(size)
        .filter(|f| f[..width * height].iter().all(|&y| y == 16) && f[width * height..].iter().all(|&c| c == 128))
        .count();
    let audio = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(&file)
        .args(["-map", "0:a", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let log = String::from_utf8_lossy(&audio.stderr);
    let max_volume_db = log
        .lines()
        .find_map(|l| l.split("max_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no max_volume in {log}"));
    Decoded {
        msn,
        samples,
        frames: lumas.len(),
        black,
        mean_luma: lumas.iter().sum::<f64>() / lumas.len().max(1) as f64,
        max_volume_db,
    }
}

fn presenter_view(server: &Server, room: &Room) -> serde_json::Value {
    let host = format!("Bearer {}", room.host_token);
    let view = server.request("GET", &format!("/api/rooms/{}", room.id), &[("Authorization", &host)], b"").json();
    view["presenters"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presenter_whose_video_is_off_is_black_for_the_program_and_the_stage_and_heard() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start();
    let room = server.create_room();
    let publisher = ffmpeg_publish(&server, &room, "main", 150);
    wait_program(&server, &room);
    let host = format!("Bearer {}", room.host_token);
    let mut watcher = WsClient::connect(&server, &room.id, "name=Watcher").await;
    let video = format!("/api/rooms/{}/presenters/main/video", room.id);

    let start = segments_after(&server, &room, 0, 1);
    let before = decode_newest(&server, &room);
    assert!(before.msn >= start && before.black == 0, "the picture before: {before:?}");
    assert!((before.mean_luma - 16.0).abs() > 30.0, "testsrc2 is colourful: {before:?}");
    assert_eq!(presenter_view(&server, &room)["video_off"], false);

    // Off: from the next frame on, the program and the stage show black; the tone goes on.
    let off = server.request("POST", &video, &[("Authorization", &host)], br#"{"off":true}"#);
    let at_off = segments_after(&server, &room, 0, 0);
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(off.json(), serde_json::json!({"presenter": "main", "video_off": true}));
    let told = watcher.next_of("presenter_video").await;
    assert_eq!((told["presenter"].as_str(), told["off"].as_bool()), (Some("main"), Some(true)));
    assert_eq!(presenter_view(&server, &room)["video_off"], true);
    // A presenter's connection opened now learns it in its welcome (the publish page says so).
    let as_presenter = WsClient::connect(&server, &room.id, &format!("token={}&name=main", room.publish_token)).await;
    let main = as_presenter.welcome["stage"].as_array().and_then(|s| s.iter().find(|p| p["name"] == "main")).cloned();
    assert_eq!(
        main.as_ref().map(|p| (&p["video_off"], &p["muted"])),
        Some((&json!(true), &json!(false))),
        "{}",
        as_presenter.welcome
    );
    assert!(watcher.welcome.get("stage").is_none_or(|s| s.is_null()), "attendees are not told: {}", watcher.welcome);
    drop(as_presenter);
    let stage = aiortc_play(&server, &format!("/whep/{}/main", room.id), 15, 60);
    // Two segments after the one open at the switch, everything was captured after it.
    segments_after(&server, &room, at_off, 2);
    let dark = decode_newest(&server, &room);
    assert!(dark.samples >= 30, "about 2 s of 30 fps: {dark:?}");
    assert_eq!(dark.frames, dark.samples, "every sample decodes to a picture: {dark:?}");
    assert_eq!(dark.black, dark.frames, "every picture is black: {dark:?}");
    assert!(dark.max_volume_db > -30.0, "the tone goes on: {dark:?}");
    let live = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    let (maps, discontinuities) =
        (live.matches("#EXT-X-MAP:").count(), live.lines().filter(|l| *l == "#EXT-X-DISCONTINUITY").count());
    assert_eq!((maps, discontinuities), (1, 0), "no new init section or discontinuity:\n{live}");
    check_playlists("live", &[("video-off".to_owned(), live)]);
    let seen = stage.finish(Duration::from_secs(60));
    eprintln!("before: {before:?}\nvideo off: {dark:?}\nWHEP while off: {seen}");
    let decoded = seen["decoded_frames"].as_u64().unwrap();
    assert!(decoded >= 30, "the WHEP viewer decodes pictures: {seen}");
    assert_eq!(seen["black_frames"].as_u64(), Some(decoded), "and all of them are black: {seen}");

    // The presenter publishes again (a new WHIP session): their video stays off.
    drop(publisher);
    let _publisher = ffmpeg_publish(&server, &room, "main", 150);
    let reconnected = segments_after(&server, &room, dark.msn, 3);
    let still = decode_newest(&server, &room);
    eprintln!("after publishing again: {still:?}");
    assert!(still.msn >= reconnected && still.samples >= 30, "{still:?}");
    assert_eq!((still.black, still.frames), (still.samples, still.samples), "still black: {still:?}");
    assert!(still.max_volume_db > -30.0, "{still:?}");
    assert_eq!(presenter_view(&server, &room)["video_off"], true);

    // On again: from the presenter's next keyframe, the picture is back everywhere.
    let on = server.request("POST", &video, &[("Authorization", &host)], br#"{"off":false}"#);
    let at_on = segments_after(&server, &room, 0, 0);
    assert_eq!(on.status, 200, "{}", on.text());
    assert_eq!(on.json()["video_off"], false);
    assert_eq!(watcher.next_of("presenter_video").await["off"], false);
    let stage = aiortc_play(&server, &format!("/whep/{}/main", room.id), 15, 60);
    segments_after(&server, &room, at_on, 2);
    let back = decode_newest(&server, &room);
    assert_eq!(back.black, 0, "the picture is back: {back:?}");
    assert_eq!(back.frames, back.samples, "{back:?}");
    assert!((back.mean_luma - 16.0).abs() > 30.0, "{back:?}");
    let seen = stage.finish(Duration::from_secs(60));
    eprintln!("video on: {back:?}\nWHEP after: {seen}");
    assert!(seen["decoded_frames"].as_u64().unwrap() >= 30, "{seen}");
    assert_eq!(seen["black_frames"].as_u64(), Some(0), "the WHEP viewer sees the picture: {seen}");

    // Bad requests and callers.
    server
        .request(
            "POST",
            &format!("/api/rooms/{}/presenters/nobody/video", room.id),
            &[("Authorization", &host)],
            br#"{"off":true}"#,
        )
        .assert_problem(404, "unknown_presenter");
    server
        .request("POST", &video, &[("Authorization", &host)], br#"{"off":"yes"}"#)
        .assert_problem(400, "malformed_json");
    server
        .request("POST", &video, &[("Authorization", &host)], br#"{"muted":true}"#)
        .assert_problem(400, "malformed_json");
    server.request("POST", &video, &[], br#"{"off":true}"#).assert_problem(401, "unauthorized");
    let attendee = format!("Bearer {}", watcher.token());
    server
        .request("POST", &video, &[("Authorization", &attendee)], br#"{"off":true}"#)
        .assert_problem(403, "forbidden");
    assert_eq!(presenter_view(&server, &room)["video_off"], false, "refused requests change nothing");
}

/// Chromium's OpenH264 through the publish page: the program goes black, and the page tells the
/// presenter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_presenter_is_told_and_their_openh264_video_turns_black() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start();
    let room = server.create_room();
    let publisher = chromium_publish(&server, &room, "main", 45);
    wait_program(&server, &room);
    let host = format!("Bearer {}", room.host_token);
    let start = segments_after(&server, &room, 0, 1);
    let before = decode_newest(&server, &room);
    assert!(before.msn >= start && before.black == 0 && before.frames == before.samples, "{before:?}");

    let video = format!("/api/rooms/{}/presenters/main/video", room.id);
    let off = server.request("POST", &video, &[("Authorization", &host)], br#"{"off":true}"#);
    let at_off = segments_after(&server, &room, 0, 0);
    assert_eq!(off.status, 200, "{}", off.text());
    segments_after(&server, &room, at_off, 2);
    let dark = decode_newest(&server, &room);
    eprintln!("Chromium before: {before:?}\nChromium off: {dark:?}");
    assert!(dark.samples >= 20, "about 2 s of 20-30 fps: {dark:?}");
    assert_eq!((dark.black, dark.frames), (dark.samples, dark.samples), "all black: {dark:?}");
    assert!(dark.max_volume_db > -60.0, "the fake microphone goes on: {dark:?}");

    let result = publisher.finish(Duration::from_secs(90));
    let told = result["moderation"].as_str().unwrap_or_default();
    assert!(told.contains("turned your video off"), "the publish page tells the presenter: {result}");
}
