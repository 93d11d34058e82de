//! A CDN edge in front of the origin, end to end (RFC 8216bis-17 Appendix B.1: identical
//! requests collapse at the edge). nginx runs `config/nginx-edge.conf`, Varnish
//! `config/varnish-edge.vcl` (the templates, filled in); 200 viewers follow the live edge through it with blocking playlist reloads
//! (`scripts/clients/llhls_load.py`, the way hls.js does), and the origin's own counters
//! (`townhall_hls_requests_total`) show that it saw about one request per object. With
//! `hls.require_cdn` the origin refuses `/hls/` to anyone without the edge's secret, while
//! the edge, `/healthz`, `/metrics` and the API work as before.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Client, Response, Room, Server, ffmpeg_publish, http, python, root};

const SECRET: &str = "edge-secret-for-tests-0123456789";
const CLIENTS: u32 = 200;
const LOAD_SECONDS: u32 = 20;

/// A CDN edge from its template in `config/`, in the foreground on a free loopback port;
/// stopped (by its pid) when dropped, also when the test panics.
struct Edge {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Edge {
    /// nginx from `config/nginx-edge.conf`.
    fn nginx(origin: SocketAddr, secret: &str) -> Edge {
        let template = std::fs::read_to_string(root().join("config/nginx-edge.conf")).unwrap();
        Self::start("nginx", origin, |addr, dir| {
            std::fs::create_dir_all(dir.join("tmp")).unwrap();
            let config = template
                .replace("@LISTEN@", &addr.to_string())
                .replace("@ORIGIN@", &origin.to_string())
                .replace("@DIR@", dir.to_str().unwrap())
                .replace("@CDN_SECRET@", secret);
            assert!(!config.contains('@'), "a placeholder is left");
            let file = dir.join("nginx.conf");
            std::fs::write(&file, config).unwrap();
            let mut command = Command::new("nginx");
            command.arg("-p").arg(dir).arg("-c").arg(&file);
            (command, dir.join("error.log"))
        })
    }

    /// Varnish from `config/varnish-edge.vcl` (no privilege separation: tests run as root).
    fn varnish(origin: SocketAddr, secret: &str) -> Edge {
        let template = std::fs::read_to_string(root().join("config/varnish-edge.vcl")).unwrap();
        Self::start("varnishd", origin, |addr, dir| {
            let vcl = template
                .replace("@ORIGIN_HOST@", &origin.ip().to_string())
                .replace("@ORIGIN_PORT@", &origin.port().to_string())
                .replace("@CDN_SECRET@", secret);
            assert!(!vcl.lines().any(|l| !l.trim_start().starts_with('#') && l.contains('@')), "a placeholder is left");
            let file = dir.join("edge.vcl");
            std::fs::write(&file, vcl).unwrap();
            let mut command = Command::new("varnishd");
            command
                .args(["-F", "-j", "none", "-a", &addr.to_string(), "-f"])
                .arg(&file)
                .arg("-n")
                .arg(dir.join("work"))
                .args(["-s", "malloc,256m"]);
            (command, dir.join("varnishd.log"))
        })
    }

    /// Starts the edge's command (made for an address and a directory; with the log file it
    /// writes to) on a free port: one that was free a moment ago can be taken before the edge
    /// binds it, so this tries a few.
    fn start(
        name: &'static str,
        origin: SocketAddr,
        make: impl Fn(SocketAddr, &PathBuf) -> (Command, PathBuf),
    ) -> Edge {
        let dir = std::env::temp_dir().join(format!("townhall-edge-{name}-{}-{}", std::process::id(), origin.port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..5 {
            let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let (mut command, log) = make(addr, &dir);
            let log_file = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
            let child = command
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("{name} ({e}): run scripts/setup.sh"));
            let mut edge = Edge { name, child, addr, dir: dir.clone() };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(status) = edge.child.try_wait().unwrap() {
                    let output = std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default()
                        + &std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        output.contains("Address already in use") || output.contains("Could not get socket"),
                        "{name} exited ({status}): {output}"
                    );
                    break;
                }
                if TcpStream::connect(addr).is_ok() {
                    return edge;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(edge.child.try_wait().unwrap().is_some(), "{name} did not listen on {addr} within 30 s");
        }
        panic!("{name} found no free port in 5 tries");
    }

    fn get(&self, path: &str) -> Response {
        http(self.addr, "GET", path, &[], b"")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL only if it does not within 10 s.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("{} left its files in {}", self.name, self.dir.display());
        }
    }
}

const KINDS: [&str; 5] = ["playlist", "blocking_playlist", "part", "segment", "init"];

/// The origin's request counters by kind, from its /metrics.
fn origin_requests(server: &Server) -> [i64; 5] {
    KINDS.map(|kind| server.metric(&format!("hls_requests_total{{kind=\"{kind}\"}}")))
}

/// The part the playlist's PRELOAD-HINT names, as (msn, index).
fn hinted_part(playlist: &str) -> (u64, u64) {
    let hint = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")).expect("a preload hint");
    let uri = hint.split("URI=\"part-").nth(1).unwrap().trim_end_matches(".m4s\"");
    let (msn, part) = uri.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}

#[test]
fn an_nginx_edge_collapses_200_llhls_viewers_into_one_origin_request_per_object() {
    let server = Server::start_with(&[("TOWNHALL_HLS_CDN_SECRET", SECRET), ("TOWNHALL_HLS_REQUIRE_CDN", "true")]);
    let edge = Edge::nginx(server.http, SECRET);
    collapses_viewers(&server, &edge);
}

#[test]
fn a_varnish_edge_collapses_200_llhls_viewers_into_one_origin_request_per_object() {
    let server = Server::start_with(&[("TOWNHALL_HLS_CDN_SECRET", SECRET), ("TOWNHALL_HLS_REQUIRE_CDN", "true")]);
    let edge = Edge::varnish(server.http, SECRET);
    collapses_viewers(&server, &edge);
}

/// 200 viewers through `edge` for 20 s: every request answered, about one origin request per
/// object; with `hls.require_cdn`, only the edge reaches `/hls/`.
fn collapses_viewers(server: &Server, edge: &Edge) {
    // The API is not behind the CDN gate.
    let room: Room = server.create_room();
    let _publisher = ffmpeg_publish(server, &room, "main", 240);
    let index = format!("/hls/{}/index.m3u8", room.id);
    let live = format!("/hls/{}/live.m3u8", room.id);
    // Through the edge: the origin refuses direct requests. (Not-live 404s are cached 1 s.)
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(edge.get(&index).status == 200 && edge.get(&live).text().contains("#EXTINF")) {
        assert!(Instant::now() < deadline, "no program through the edge within 90 s: {}", edge.get(&live).text());
        std::thread::sleep(Duration::from_millis(200));
    }

    // Only the edge reaches /hls/: no header, or a wrong secret, is a 403 nobody caches.
    for headers in [&[][..], &[("X-Townhall-CDN", "edge-secret-for-tests-012345678")][..]] {
        let direct = server.request("GET", &live, headers, b"");
        let problem = direct.assert_problem(403, "cdn_only");
        assert!(problem["detail"].as_str().unwrap().contains("X-Townhall-CDN"), "{problem}");
        assert_eq!(direct.header("cache-control"), Some("no-store"));
    }
    let via_edge = edge.get(&live);
    assert_eq!(via_edge.status, 200, "{}", via_edge.text());
    assert!(via_edge.header("x-cache-status").is_some(), "{:?}", via_edge.headers);
    assert!(via_edge.text().starts_with("#EXTM3U"), "{}", via_edge.text());
    // What passes the gate is the secret, not the edge's address.
    assert_eq!(server.request("GET", &live, &[("X-Townhall-CDN", SECRET)], b"").status, 200);
    // Everything but /hls/ is open as before.
    assert_eq!(server.request("GET", "/healthz", &[], b"").json()["status"], "ok");
    let rooms = server.request("GET", "/api/rooms", &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))], b"");
    assert_eq!(rooms.status, 200, "{}", rooms.text());
    assert_eq!(server.request("GET", &format!("/api/rooms/{}", room.id), &[], b"").status, 401, "auth as before");

    // The query string is in the cache key: a blocking request for the next part gets a
    // playlist that has it (a MISS), and the same URI again is a HIT.
    let (msn, part) = hinted_part(&via_edge.text());
    let blocking_uri = format!("{live}?_HLS_msn={msn}&_HLS_part={part}");
    let blocking = edge.get(&blocking_uri);
    assert_eq!(blocking.status, 200, "{}", blocking.text());
    assert!(blocking.text().contains(&format!("part-{msn}.{part}.m4s")), "{}", blocking.text());
    assert_eq!(blocking.header("x-cache-status"), Some("MISS"));
    assert!(blocking.header("cache-control").unwrap().contains("max-age=12"), "the origin's 6 x TD passes");
    let again = edge.get(&blocking_uri);
    assert_eq!((again.status, again.header("x-cache-status")), (200, Some("HIT")));
    assert_eq!(again.text(), blocking.text());

    // 200 viewers through the edge for 20 s.
    let before = origin_requests(server);
    let summary = Client::spawn(
        "LL-HLS load client",
        &python(),
        &[
            "scripts/clients/llhls_load.py",
            &edge.url(&index),
            "--clients",
            &CLIENTS.to_string(),
            "--seconds",
            &LOAD_SECONDS.to_string(),
        ],
    )
    .finish(Duration::from_secs(u64::from(LOAD_SECONDS) + 90));
    let after = origin_requests(server);
    let origin: std::collections::HashMap<&str, i64> =
        KINDS.iter().zip(before.iter().zip(after)).map(|(k, (b, a))| (*k, a - b)).collect();
    eprintln!("cdn_edge ({}): clients: {summary}", edge.name);
    eprintln!("cdn_edge ({}): origin requests during the load: {origin:?}", edge.name);

    assert_eq!(summary["errors"], serde_json::json!({}), "every viewer request succeeded: {summary}");
    let distinct = |kind: &str| summary["distinct"][kind].as_i64().unwrap_or(0);
    let asked = |kind: &str| summary["requests_by_kind"][kind].as_i64().unwrap_or(0);
    // The viewers followed the live edge: parts come at 5 per second.
    assert!(distinct("part") >= i64::from(LOAD_SECONDS) * 5 / 2, "{summary}");
    assert!(summary["parts_per_client"]["min"].as_i64().unwrap() >= i64::from(LOAD_SECONDS) * 5 / 4, "{summary}");
    assert!(asked("part") >= 50 * distinct("part"), "most viewers asked for most parts: {summary}");
    // About one origin request per object (and edge), whatever the number of viewers.
    for kind in ["part", "blocking_playlist"] {
        assert!(
            origin[kind] as f64 <= 1.5 * distinct(kind) as f64,
            "the origin saw {} {kind} requests for {} distinct objects (viewers asked {} times): {summary}",
            origin[kind],
            distinct(kind),
            asked(kind)
        );
    }
    assert!(origin["blocking_playlist"] > 0 && origin["part"] > 0, "the load reached the origin: {origin:?}");
    let hits = summary["cache_status"]["HIT"].as_i64().unwrap_or(0);
    assert!(hits as f64 >= 0.9 * summary["requests"].as_i64().unwrap() as f64, "the edge answered: {summary}");
}
