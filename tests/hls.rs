//! The program over LL-HLS, end to end: WHIP publishers (ffmpeg 9, Chromium, aiortc) → the
//! packager → the origin → hls.js in headless Chromium (low-latency mode), ffprobe, and npm
//! hls-parser in strict mode on every playlist the origin served.

mod common;

use std::time::{Duration, Instant};

use common::hls::{check_playlists, ffprobe_streams, wait_program, watch};
use common::{Room, Server, aiortc_publish, chromium_publish, ffmpeg_publish};

fn edge(server: &Server, room: &Room) -> (u64, u64) {
    let text = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    let hint = text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")).expect("a preload hint");
    let uri = hint.split("URI=\"part-").nth(1).unwrap().trim_end_matches(".m4s\"");
    let (msn, part) = uri.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}

#[test]
fn ffmpeg_program_plays_in_hlsjs_low_latency_and_every_playlist_is_valid() {
    let server = Server::start();
    let room = server.create_room();
    let _publisher = ffmpeg_publish(&server, &room, "main", 60);
    wait_program(&server, &room);

    // ffprobe decodes H.264 + AAC, with audio and video starting together.
    let streams = ffprobe_streams(&server.url(&format!("/hls/{}/index.m3u8", room.id)));
    let codec = |name: &str| {
        streams.iter().find(|s| s["codec_name"] == name).unwrap_or_else(|| panic!("no {name}: {streams:?}"))
    };
    let start = |s: &serde_json::Value| s["start_time"].as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!(codec("h264")["width"], 640);
    assert!((start(codec("h264")) - start(codec("aac"))).abs() < 0.1, "A/V start times differ: {streams:?}");

    // hls.js plays at the live edge with blocking reloads and parts.
    let player = watch(&server, &room, "", 6, 45);
    assert!(player["current_time"].as_f64().unwrap() >= 6.0, "{player}");
    assert!(player["fatal"].is_null(), "{player}");
    assert!(player["latency"].as_f64().is_some_and(|l| l > 0.0 && l < 5.0), "{player}");
    let playing_date = player["playing_date"].as_i64().expect("playingDate from PROGRAM-DATE-TIME");
    assert!((player["now"].as_i64().unwrap() - playing_date).abs() < 10_000, "{player}");
    assert!(player["blocking_reloads"].as_u64().unwrap() > 0, "{player}");
    assert!(player["part_loads"].as_u64().unwrap() > 0, "{player}");

    // Every kind of playlist passes the strict checks.
    let live = format!("/hls/{}/live.m3u8", room.id);
    server.wait_for("8 segments: more than the skip boundary", Duration::from_secs(60), |s| {
        s.request("GET", &live, &[], b"").text().matches("#EXTINF").count() >= 8
    });
    let mut served = Vec::new();
    served.push(("live".to_owned(), server.request("GET", &live, &[], b"").text()));
    let (msn, part) = edge(&server, &room);
    let asked = Instant::now();
    let blocking = server.request("GET", &format!("{live}?_HLS_msn={msn}&_HLS_part={part}"), &[], b"");
    assert_eq!(blocking.status, 200);
    assert!(asked.elapsed() < Duration::from_secs(3), "a blocking request for the next part waits about one part");
    assert!(blocking.text().contains(&format!("part-{msn}.{part}.m4s")), "{}", blocking.text());
    assert!(blocking.header("cache-control").unwrap().contains("max-age=12"), "6 x TD for blocking responses");
    served.push(("blocking".to_owned(), blocking.text()));
    let delta = server.request("GET", &format!("{live}?_HLS_msn={msn}&_HLS_skip=YES"), &[], b"").text();
    assert!(
        delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="),
        "the live window (20 s) exceeds the skip boundary (12 s): {delta}"
    );
    served.push(("delta".to_owned(), delta));
    let delta_v2 = server.request("GET", &format!("{live}?_HLS_msn={msn}&_HLS_skip=v2"), &[], b"").text();
    assert!(delta_v2.contains(",RECENTLY-REMOVED-DATERANGES=\""), "{delta_v2}");
    served.push(("delta-v2".to_owned(), delta_v2));
    check_playlists("live", &served);

    // Playlists are gzipped for clients that ask; media is not.
    let gzipped = server.request("GET", &live, &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(&gzipped.body[..2], &[0x1f, 0x8b]);

    // The hinted part comes whole once it is complete.
    let (msn, part) = edge(&server, &room);
    let hinted = server.request("GET", &format!("/hls/{}/part-{msn}.{part}.m4s", room.id), &[], b"");
    assert_eq!(hinted.status, 200);
    assert_eq!(&hinted.body[4..8], b"moof");
    assert!(hinted.header("cache-control").unwrap().contains("immutable"));
    let part_gz =
        server.request("GET", &format!("/hls/{}/part-{msn}.{part}.m4s", room.id), &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(part_gz.header("content-encoding"), None);

    // The event ends: the replay becomes VOD and plays to its end.
    let host = format!("Bearer {}", room.host_token);
    assert_eq!(
        server.request("POST", &format!("/api/rooms/{}/end", room.id), &[("Authorization", &host)], b"").status,
        200
    );
    let replay = server.request("GET", &format!("/hls/{}/replay.m3u8", room.id), &[], b"").text();
    assert!(replay.contains("#EXT-X-PLAYLIST-TYPE:VOD") && replay.ends_with("#EXT-X-ENDLIST\n"), "{replay}");
    check_playlists("replay", &[("replay".to_owned(), replay)]);
    let live_after = server.request("GET", &live, &[], b"").text();
    assert!(live_after.ends_with("#EXT-X-ENDLIST\n"));
    let replayed = watch(&server, &room, "?replay", 1_000, 90);
    assert!(replayed["ended"].as_bool().unwrap(), "the replay plays to ENDLIST: {replayed}");
    assert!(replayed["fatal"].is_null(), "{replayed}");
}

#[test]
fn bad_hls_requests_get_clear_errors() {
    let server = Server::start();
    let room = server.create_room();
    let base = format!("/hls/{}", room.id);
    let get = |path: &str| server.request("GET", path, &[], b"");
    get(&format!("{base}/index.m3u8")).assert_problem(404, "not_live");
    get(&format!("{base}/live.m3u8?_HLS_part=1")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/live.m3u8?_HLS_msn=abc")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/live.m3u8?_HLS_msn=99999999999")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/live.m3u8?_HLS_msn=0&_HLS_skip=please")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/live.m3u8?colour=red")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/replay.m3u8?_HLS_msn=1")).assert_problem(400, "bad_hls_directive");
    get(&format!("{base}/seg-1.m4s")).assert_problem(404, "not_found");
    get(&format!("{base}/..%2F..%2Frooms.json")).assert_problem(404, "not_found");
    get(&format!("{base}/%2e%2e")).assert_problem(404, "not_found");
    get("/hls/no-such-room/index.m3u8").assert_problem(404, "unknown_room");
    get(&format!("{base}/index.html")).assert_problem(404, "not_found");
    let missing = get(&format!("{base}/part-0.0.m4s"));
    missing.assert_problem(404, "not_found");
    assert_eq!(missing.header("cache-control"), Some("public, max-age=1"));
}

#[test]
fn program_switch_between_presenters_plays_on() {
    let server = Server::start();
    let room = server.create_room();
    let _first = ffmpeg_publish(&server, &room, "first", 70);
    wait_program(&server, &room);
    let _second = aiortc_publish(&server, &room, "second", 70);
    let auth = format!("Bearer {}", room.host_token);
    server.wait_for("the second presenter", Duration::from_secs(60), |s| {
        s.request("GET", &format!("/api/rooms/{}", room.id), &[("Authorization", &auth)], b"")
            .text()
            .contains("\"second\"")
    });
    let switch = server.request(
        "POST",
        &format!("/api/rooms/{}/program", room.id),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        br#"{"publisher":"second"}"#,
    );
    assert_eq!(switch.status, 200, "{}", switch.text());
    assert_eq!(switch.json()["program"], "second");
    server.wait_for("the switch in the playlist", Duration::from_secs(30), |s| {
        s.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text().contains("#EXT-X-DISCONTINUITY")
    });
    let player = watch(&server, &room, "", 6, 45);
    assert!(player["current_time"].as_f64().unwrap() >= 6.0, "{player}");
    assert!(player["fatal"].is_null(), "{player}");
    let live = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    assert!(live.contains("#EXT-X-MAP:URI=\"init-2.mp4\""), "the new presenter has its own init section: {live}");
    check_playlists("live", &[("after-switch".to_owned(), live)]);
    server
        .request(
            "POST",
            &format!("/api/rooms/{}/program", room.id),
            &[("Authorization", &auth)],
            br#"{"publisher":"nobody"}"#,
        )
        .assert_problem(404, "unknown_presenter");
}

#[test]
fn chromium_program_plays_in_hlsjs() {
    let server = Server::start();
    let room = server.create_room();
    let _publisher = chromium_publish(&server, &room, "browser", 60);
    wait_program(&server, &room);
    let player = watch(&server, &room, "", 5, 45);
    assert!(player["current_time"].as_f64().unwrap() >= 5.0, "{player}");
    assert!(player["fatal"].is_null(), "{player}");
    assert!(player["part_loads"].as_u64().unwrap() > 0, "{player}");
    let live = server.request("GET", &format!("/hls/{}/live.m3u8", room.id), &[], b"").text();
    check_playlists("live", &[("chromium".to_owned(), live)]);
}
