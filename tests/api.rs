//! The rooms API, health, metrics and pages, through the real binary.

mod common;

use common::{ADMIN_TOKEN, Server};

fn admin() -> (&'static str, String) {
    ("Authorization", format!("Bearer {ADMIN_TOKEN}"))
}

#[test]
fn rooms_are_created_read_listed_and_deleted_with_the_admin_token() {
    let server = Server::start();
    let (k, v) = admin();
    let auth = [(k, v.as_str()), ("Content-Type", "application/json")];

    let created = server.request("POST", "/api/rooms", &auth, br#"{"id":"all-hands","name":"All hands"}"#);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location"), Some("/api/rooms/all-hands"));
    let room = created.json();
    assert_eq!(room["id"], "all-hands");
    assert_eq!(room["name"], "All hands");
    for key in ["publish_token", "host_token"] {
        assert!(room[key].as_str().unwrap().len() >= 32, "{key}");
    }
    let base = server.url("");
    assert_eq!(room["whip_url"], format!("{base}/whip/all-hands"));
    assert_eq!(room["whep_url"], format!("{base}/whep/all-hands"));
    assert_eq!(room["hls_url"], format!("{base}/hls/all-hands/index.m3u8"));

    server.request("POST", "/api/rooms", &auth, br#"{"id":"all-hands"}"#).assert_problem(409, "room_exists");
    server.request("POST", "/api/rooms", &auth, br#"{"id":"../etc"}"#).assert_problem(400, "invalid_room_id");
    server.request("POST", "/api/rooms", &auth, br#"{"id":"#).assert_problem(400, "malformed_json");
    server.request("POST", "/api/rooms", &auth, br#"{"colour":"red"}"#).assert_problem(400, "malformed_json");
    server
        .request("POST", "/api/rooms", &[(k, v.as_str()), ("Content-Type", "text/plain")], b"x")
        .assert_problem(415, "unsupported_media_type");
    server.request("POST", "/api/rooms", &[], b"").assert_problem(401, "unauthorized");
    let wrong = server.request("POST", "/api/rooms", &[("Authorization", "Bearer nope")], b"");
    wrong.assert_problem(401, "unauthorized");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));

    // The host token reads its own room, not the list.
    let host = format!("Bearer {}", room["host_token"].as_str().unwrap());
    let read = server.request("GET", "/api/rooms/all-hands", &[("Authorization", &host)], b"");
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["publish_token"], room["publish_token"]);
    assert!(read.json().get("host_token").is_none(), "the host token is shown to the admin only");
    server.request("GET", "/api/rooms", &[("Authorization", &host)], b"").assert_problem(401, "unauthorized");
    let list = server.request("GET", "/api/rooms", &[(k, v.as_str())], b"");
    assert_eq!(list.json().as_array().unwrap().len(), 1);

    server.request("GET", "/api/rooms/nope", &[(k, v.as_str())], b"").assert_problem(404, "unknown_room");
    assert_eq!(server.request("DELETE", "/api/rooms/all-hands", &[(k, v.as_str())], b"").status, 204);
    server.request("DELETE", "/api/rooms/all-hands", &[(k, v.as_str())], b"").assert_problem(404, "unknown_room");
}

#[test]
fn rooms_survive_a_restart() {
    let server = Server::start();
    let room = server.create_room();
    let dir = server.kill_keeping_data();
    let server = Server::start_in(dir, &[]);
    let (k, v) = admin();
    let read = server.request("GET", &format!("/api/rooms/{}", room.id), &[(k, v.as_str())], b"");
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["publish_token"], room.publish_token.as_str());
}

#[test]
fn config_command_prints_the_effective_configuration() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_townhall"))
        .args(["config", "--listen", "127.0.0.1:9999"])
        .env("TOWNHALL_STAGE_MAX_PRESENTERS", "3")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:9999\""), "{text}");
    assert!(text.contains("max_presenters = 3"), "{text}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_townhall"))
        .args(["config"])
        .env("TOWNHALL_STAGE_MAX_PRESENTERS", "0")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("stage.max_presenters"));
}

#[test]
fn health_metrics_pages_and_unknown_paths() {
    let server = Server::start();
    let health = server.request("GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["udp"], server.udp.to_string());

    let metrics = server.request("GET", "/metrics", &[], b"");
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    for name in [
        "sessions_active",
        "udp_received_bytes_total",
        "rtp_received_packets_total",
        "rtp_subscriber_dropped_packets_total",
        "keyframe_requests_sent_total",
    ] {
        assert!(text.contains(&format!("# TYPE townhall_{name} ")), "{name} missing");
    }

    for path in ["/", "/publish/some-room", "/stage/some-room", "/watch/some-room", "/studio/some-room"] {
        let page = server.request("GET", path, &[], b"");
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
    }
    assert!(server.request("GET", "/publish/some-room", &[], b"").text().contains("'some-room'"));
    assert!(server.request("GET", "/studio/some-room", &[], b"").text().contains(r#"data-room="some-room""#));
    for module in [
        "whip.js",
        "watch.js",
        "replay.js",
        "studio.js",
        "room-state.js",
        "room-socket.js",
        "timeline.js",
        "inband.js",
        "panels.js",
    ] {
        let js = server.request("GET", &format!("/assets/{module}"), &[], b"");
        assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"), "{module}");
    }
    server.request("GET", "/assets/../Cargo.toml", &[], b"").assert_problem(404, "not_found");
    server.request("GET", "/publish/bad%20room", &[], b"").assert_problem(400, "invalid_room_id");
    server.request("GET", "/nothing/here", &[], b"").assert_problem(404, "not_found");

    let preflight = server.request(
        "OPTIONS",
        "/whip/any",
        &[("Origin", "https://studio.example"), ("Access-Control-Request-Method", "POST")],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("accept-post"), Some("application/sdp"));
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(preflight.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("Authorization"));
    assert!(preflight.header("access-control-expose-headers").unwrap().contains("Location"));
}

#[test]
fn configured_ice_servers_are_advertised_in_link_headers() {
    let server = Server::start_with(&[(
        "TOWNHALL_WEBRTC_ICE_SERVERS",
        r#"[{ urls = ["stun:stun.example.net:3478"] }, { urls = ["turn:turn.example.net:3478?transport=udp"], username = "u1", credential = "p1" }]"#,
    )]);
    let preflight = server.request("OPTIONS", "/whip/any", &[], b"");
    let links = preflight.headers_named("link");
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0], r#"<stun:stun.example.net:3478>; rel="ice-server""#);
    assert!(links[1].contains(r#"username="u1"; credential="p1"; credential-type="password""#), "{}", links[1]);
}

#[test]
fn a_data_dir_that_cannot_be_written_is_refused_at_start_up() {
    // Tests run as root, for whom permission bits do not apply: use places no one can write
    // to, a regular file where the directory should be and a read-only file system.
    let file = std::env::temp_dir().join(format!("townhall-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"a file").unwrap();
    for dir in [file.clone(), std::path::PathBuf::from("/proc/townhall-data")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_townhall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--udp-listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("TOWNHALL_ADMIN_TOKEN", "x")
            .output()
            .unwrap();
        assert!(!output.status.success(), "started on {}", dir.display());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("data directory") && stderr.contains(&*dir.to_string_lossy()), "{stderr}");
    }
    std::fs::remove_file(file).unwrap();
}
