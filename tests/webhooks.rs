//! Webhooks through the real binary: a receiver on loopback (a plain HTTP/1.1 server written
//! here on std's TcpListener) gets every event of a room's life, signed as the Standard
//! Webhooks specification says (recomputed here with ring), in order; failed deliveries are
//! retried with the same `webhook-id`; events pending while the receiver is down survive a
//! `kill -9` and arrive after the restart; a bad `[webhooks]` config refuses to start.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ws::WsClient;
use common::{ADMIN_TOKEN, Server, ffmpeg_publish};
use serde_json::Value;

const SECRET: &str = "test-webhook-secret";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

/// A webhook receiver: answers 500 to the first `fail_first` requests, 503 while `down`, else 200.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (r, d) = (received.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (r, d, seen) = (r.clone(), d.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &r, &d, &seen, fail_first));
            }
        });
        Receiver { addr, received, down }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/townhall", self.addr)
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The delivered (200) events, in order of arrival.
    fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.status == 200).collect()
    }

    fn wait_delivered(&self, kinds: &[&str], timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if kinds.iter().all(|k| delivered.iter().any(|r| r.kind() == *k)) {
                return delivered;
            }
            assert!(Instant::now() < deadline, "waiting for {kinds:?}; got {:?}", self.all());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Serves the requests of one connection (keep-alive), then returns.
fn serve(
    stream: std::net::TcpStream,
    received: &Mutex<Vec<Received>>,
    down: &AtomicBool,
    seen: &AtomicUsize,
    fail_first: usize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST /hooks/townhall "), "{line}");
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (k, v) = header.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(get("content-type"), "application/json");
        let mut body = vec![0; get("content-length").parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let status = if down.load(Ordering::SeqCst) {
            503
        } else if n < fail_first {
            500
        } else {
            200
        };
        received.lock().unwrap().push(Received {
            id: get("webhook-id"),
            timestamp: get("webhook-timestamp"),
            signature: get("webhook-signature"),
            body,
            status,
        });
        let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Standard base64 with padding, written here apart from the server's.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Checks a request's signature as a receiver would (standardwebhooks.com, "Verifying").
fn assert_signed(r: &Received) {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut signed = format!("{}.{}.", r.id, r.timestamp).into_bytes();
    signed.extend_from_slice(&r.body);
    let expected = format!("v1,{}", base64(ring::hmac::sign(&key, &signed).as_ref()));
    assert!(r.signature.split(' ').any(|s| s == expected), "bad signature {:?}, expected {expected}", r.signature);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ts: i64 = r.timestamp.parse().expect("webhook-timestamp in Unix seconds");
    assert!((now - ts).abs() < 300, "stale timestamp {ts} (now {now})");
    assert!(r.id.starts_with("msg_") && r.id.len() > 10, "{}", r.id);
    let json = r.json();
    assert!(json["timestamp"].as_str().unwrap().ends_with('Z'), "{json}");
    assert!(json["data"].is_object(), "{json}");
}

fn env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("TOWNHALL_WEBHOOKS_URLS", receiver.url()),
        ("TOWNHALL_WEBHOOKS_SECRET", SECRET.to_owned()),
        ("TOWNHALL_WEBHOOKS_BACKOFF_INITIAL_MS", "100".to_owned()),
        ("TOWNHALL_WEBHOOKS_BACKOFF_MAX_MS", "400".to_owned()),
        ("TOWNHALL_WEBHOOKS_MAX_ATTEMPTS", "1000".to_owned()),
    ]
}

fn start(receiver: &Receiver, dir: Option<std::path::PathBuf>) -> Server {
    let owned = env(receiver);
    let vars: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match dir {
        Some(dir) => Server::start_in(dir, &vars),
        None => Server::start_with(&vars),
    }
}

fn healthz(server: &Server) -> Value {
    server.request("GET", "/healthz", &[], b"").json()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rooms_life_arrives_signed_in_order_and_failures_are_retried_with_the_same_id() {
    let receiver = Receiver::start(2);
    let server = start(&receiver, None);
    let room = server.create_room();
    let admin = format!("Bearer {ADMIN_TOKEN}");

    // An attendee joins over the WebSocket with two tabs: one join, one leave.
    let mut first = WsClient::connect(&server, &room.id, "name=Ada").await;
    let token = first.token();
    let second = WsClient::connect(&server, &room.id, &format!("token={token}")).await;
    let participant = first.welcome["participant"].clone();
    receiver.wait_delivered(&["room.created", "participant.joined"], Duration::from_secs(30));
    first.socket.close(None).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!receiver.all().iter().any(|r| r.kind() == "participant.left"), "a tab is still open");
    let mut second = second;
    second.socket.close(None).await.unwrap();
    drop(second);
    receiver.wait_delivered(&["participant.left"], Duration::from_secs(30));

    let host = format!("Bearer {}", room.host_token);
    let end = server.request("POST", &format!("/api/rooms/{}/end", room.id), &[("Authorization", &host)], b"");
    assert_eq!(end.status, 200, "{}", end.text());
    let delete = server.request("DELETE", &format!("/api/rooms/{}", room.id), &[("Authorization", &admin)], b"");
    assert_eq!(delete.status, 204, "{}", delete.text());
    let delivered = receiver.wait_delivered(&["room.ended", "room.deleted"], Duration::from_secs(30));

    // Every event once, in the order it happened, each signed.
    let kinds: Vec<String> = delivered.iter().map(Received::kind).collect();
    assert_eq!(
        kinds,
        ["room.created", "participant.joined", "participant.left", "room.ended", "room.deleted"],
        "{delivered:?}"
    );
    for r in receiver.all() {
        assert_signed(&r);
    }
    let data: Vec<Value> = delivered.iter().map(|r| r.json()["data"].clone()).collect();
    assert!(data.iter().all(|d| d["room"] == room.id.as_str()), "{data:?}");
    assert_eq!(data[1]["participant"]["id"], participant["participant_id"]);
    assert_eq!(data[1]["participant"]["name"], "Ada");
    assert_eq!(data[1]["participant"]["role"], participant["role"]);
    assert_eq!(data[2]["participant"], data[1]["participant"]);

    // The receiver failed the first two attempts: they were retried with the same id and body.
    let all = receiver.all();
    assert_eq!(all.iter().map(|r| r.status).take(3).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(all[..3].iter().all(|r| r.id == all[0].id && r.body == all[0].body), "{all:?}");
    assert_eq!(all[0].kind(), "room.created");
    let ids: std::collections::HashSet<&str> = delivered.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), delivered.len(), "one id per event");

    assert_eq!(server.metric("webhooks_delivered_total"), 5);
    assert_eq!(server.metric("webhooks_failed_attempts_total"), 2);
    assert_eq!(server.metric("webhooks_dropped_total"), 0);
    assert_eq!(server.metric("webhooks_backlog"), 0);
    let health = healthz(&server);
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["webhooks"]["backlog"], 0, "{health}");
    assert!(health["webhooks"]["last_error"].is_null(), "{health}");
}

#[test]
fn events_pending_while_the_receiver_is_down_survive_kill_9() {
    let receiver = Receiver::start(0);
    receiver.down.store(true, Ordering::SeqCst);
    let server = start(&receiver, None);
    let room = server.create_room();
    let host = format!("Bearer {}", room.host_token);
    let end = server.request("POST", &format!("/api/rooms/{}/end", room.id), &[("Authorization", &host)], b"");
    assert_eq!(end.status, 200, "{}", end.text());
    server.wait_for("failed attempts", Duration::from_secs(30), |s| s.metric("webhooks_failed_attempts_total") >= 3);
    let health = healthz(&server);
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["webhooks"]["backlog"], 2, "{health}");
    assert!(health["webhooks"]["last_error"].as_str().unwrap().contains("503"), "{health}");
    let pending_ids: Vec<String> = {
        let mut ids: Vec<String> = receiver.all().into_iter().map(|r| r.id).collect();
        ids.dedup();
        ids
    };
    assert_eq!(pending_ids.len(), 1, "the second waits behind the first: {pending_ids:?}");

    let dir = server.kill_keeping_data();
    receiver.down.store(false, Ordering::SeqCst);
    let server = start(&receiver, Some(dir));
    let delivered = receiver.wait_delivered(&["room.created", "room.ended"], Duration::from_secs(30));
    assert_eq!(delivered.iter().map(Received::kind).collect::<Vec<_>>(), ["room.created", "room.ended"]);
    assert_eq!(delivered[0].id, pending_ids[0], "the same webhook-id after the restart");
    for r in receiver.all() {
        assert_signed(&r);
    }
    server.wait_for("an empty backlog", Duration::from_secs(10), |s| s.metric("webhooks_backlog") == 0);
    assert_eq!(healthz(&server)["status"], "ok");
    // Delivered events are forgotten: nothing is sent again after another restart.
    let dir = server.kill_keeping_data();
    let server = start(&receiver, Some(dir));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.delivered().len(), 2, "{:?}", receiver.all());
    assert_eq!(server.metric("webhooks_backlog"), 0);
}

#[test]
fn the_program_start_and_a_ready_recording_are_announced() {
    let receiver = Receiver::start(0);
    let server = start(&receiver, None);
    let room = server.create_room();
    let _publisher = ffmpeg_publish(&server, &room, "main", 30);
    let started = receiver.wait_delivered(&["room.started"], Duration::from_secs(60));
    assert_eq!(started.iter().filter(|r| r.kind() == "room.started").count(), 1);
    let host = format!("Bearer {}", room.host_token);
    let path = format!("/api/rooms/{}/recordings", room.id);
    let auth = [("Authorization", host.as_str()), ("Content-Type", "application/json")];
    let start = server.request("POST", &path, &auth, br#"{"action":"start"}"#);
    assert_eq!(start.status, 201, "{}", start.text());
    std::thread::sleep(Duration::from_secs(3));
    let stop = server.request("POST", &path, &auth, br#"{"action":"stop"}"#);
    assert_eq!(stop.status, 200, "{}", stop.text());
    let delivered = receiver.wait_delivered(&["recording.ready"], Duration::from_secs(30));
    let ready = delivered.iter().find(|r| r.kind() == "recording.ready").unwrap().json();
    assert_eq!(ready["data"]["room"], room.id.as_str());
    assert_eq!(ready["data"]["recording"], stop.json()["id"]);
    assert_eq!(ready["data"]["mp4_url"], stop.json()["mp4_url"]);
    // What the webhook announces is there.
    let mp4 = ready["data"]["mp4_url"].as_str().unwrap();
    let mp4_path = &mp4[mp4.find("/api/").unwrap()..];
    assert_eq!(server.request("GET", mp4_path, &[], b"").status, 200);
    for r in receiver.all() {
        assert_signed(&r);
    }
}

/// Runs `townhall serve` with `vars`; it must exit with an error that contains `expected`.
fn refuses(vars: &[(&str, &str)], expected: &str) {
    let dir = std::env::temp_dir().join(format!("townhall-webhooks-bad-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_townhall"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--udp-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("townhall started with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_webhooks_config_refuses_to_start() {
    refuses(&[("TOWNHALL_WEBHOOKS_URLS", "http://127.0.0.1:9/hook")], "webhooks.secret is required");
    refuses(
        &[("TOWNHALL_WEBHOOKS_URLS", "ftp://crm.example/hook"), ("TOWNHALL_WEBHOOKS_SECRET", SECRET)],
        "is not an http:// or https:// URL",
    );
}
