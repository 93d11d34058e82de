//! Shared helpers of the end-to-end tests: start the real `townhall` binary on free loopback
//! ports with a fresh data dir, talk HTTP/1.1 to it, read its metrics, and run the independent
//! clients (Chromium via playwright-core, ffmpeg 9's WHIP muxer, aiortc) that
//! `scripts/setup.sh` installs.
#![allow(dead_code)]

pub mod hls;
pub mod pages;
pub mod steps;
pub mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running server, killed (by its pid) when dropped.
pub struct Server {
    child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts the binary with extra `TOWNHALL_*` variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let data_dir = std::env::temp_dir().join(format!("townhall-test-{}-{}", std::process::id(), rand_suffix()));
        Self::start_in(data_dir, env)
    }

    /// Starts the binary on `data_dir` (which it removes when dropped, unless panicking).
    pub fn start_in(data_dir: PathBuf, env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = data_dir.join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_townhall"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--udp-listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env("TOWNHALL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOWNHALL_LOG", "info,townhall_ingest=debug,rtc=warn,rtc_ice=warn,rtc_dtls=error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start townhall");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if !sent && line.contains("townhall listening") {
                    let field = |name: &str| -> Option<SocketAddr> {
                        let start = line.find(&format!("{name}="))? + name.len() + 1;
                        line[start..].split_whitespace().next()?.parse().ok()
                    };
                    let _ = tx.send((field("http").unwrap(), field("udp").unwrap()));
                    sent = true;
                }
            }
        });
        let (http, udp) = rx.recv_timeout(Duration::from_secs(30)).expect("townhall did not start within 30 s");
        Server { child, http, udp, data_dir, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        http(self.http, method, path, headers, body)
    }

    /// Creates a room with the admin token.
    pub fn create_room(&self) -> Room {
        self.create_room_with(serde_json::Value::Null)
    }

    /// Creates a room with the admin token from a JSON body (`null`: an empty body).
    pub fn create_room_with(&self, body: serde_json::Value) -> Room {
        let admin = format!("Bearer {ADMIN_TOKEN}");
        let r = if body.is_null() {
            self.request("POST", "/api/rooms", &[("Authorization", &admin)], b"")
        } else {
            let headers = [("Authorization", admin.as_str()), ("Content-Type", "application/json")];
            self.request("POST", "/api/rooms", &headers, body.to_string().as_bytes())
        };
        assert_eq!(r.status, 201, "{}", r.text());
        let json = r.json();
        Room {
            id: json["id"].as_str().unwrap().to_owned(),
            publish_token: json["publish_token"].as_str().unwrap().to_owned(),
            host_token: json["host_token"].as_str().unwrap().to_owned(),
        }
    }

    /// One counter or gauge from /metrics.
    pub fn metric(&self, name: &str) -> i64 {
        let text = self.request("GET", "/metrics", &[], b"").text();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("townhall_{name} ")))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until `condition` holds, polling; panics with `what` after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut condition: impl FnMut(&Server) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {timeout:?} waiting for {what}; server log: {}", self.log.display());
    }

    /// Stops the server (SIGKILL) and keeps its data dir; returns the dir.
    pub fn kill_keeping_data(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.data_dir.clone();
        self.data_dir = PathBuf::new();
        dir
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() && !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub struct Room {
    pub id: String,
    pub publish_token: String,
    pub host_token: String,
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts a problem+json error with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text());
        let json = self.json();
        assert_eq!(json["code"], code, "{json}");
        assert_eq!(json["status"], status);
        assert!(!json["detail"].as_str().unwrap_or_default().is_empty());
        json
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..pos]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[pos + 2..pos + 2 + size]);
            rest = &rest[pos + 2 + size + 2..];
        }
        body = out;
    }
    Response { status, headers, body }
}

/// The Python of the venv `scripts/setup.sh` made.
pub fn python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh first", p.display());
    p
}

/// ffmpeg 9 (with the WHIP muxer) from imageio-ffmpeg.
pub fn ffmpeg() -> PathBuf {
    let out = Command::new(python())
        .args(["-c", "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())"])
        .output()
        .expect("imageio_ffmpeg");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A client process, killed by pid when dropped.
pub struct Client {
    pub child: Child,
    name: String,
}

impl Client {
    /// Starts `program args…`, capturing stdout; stderr goes to the test's.
    pub fn spawn(name: &str, program: &Path, args: &[&str]) -> Client {
        let child = Command::new(program)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}; run scripts/setup.sh", program.display()));
        Client { child, name: name.to_owned() }
    }

    /// Waits for exit (at most `timeout`) and parses the last stdout line as JSON.
    pub fn finish(mut self, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
                assert!(status.success(), "{} failed ({status}): {out}", self.name);
                let last = out
                    .lines()
                    .rev()
                    .find(|l| l.starts_with('{'))
                    .unwrap_or_else(|| panic!("{}: no JSON in {out:?}", self.name));
                return serde_json::from_str(last).unwrap();
            }
            assert!(Instant::now() < deadline, "{} did not finish within {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn aiortc_publish(server: &Server, room: &Room, presenter: &str, seconds: u32) -> Client {
    let url = server.url(&format!("/whip/{}?presenter={presenter}", room.id));
    Client::spawn(
        "aiortc publisher",
        &python(),
        &[
            "scripts/clients/aiortc_client.py",
            "publish",
            &url,
            "--token",
            &room.publish_token,
            "--seconds",
            &seconds.to_string(),
        ],
    )
}

pub fn aiortc_play(server: &Server, path: &str, seconds: u32, min_frames: u32) -> Client {
    let url = server.url(path);
    Client::spawn(
        "aiortc player",
        &python(),
        &[
            "scripts/clients/aiortc_client.py",
            "play",
            &url,
            "--seconds",
            &seconds.to_string(),
            "--min-frames",
            &min_frames.to_string(),
        ],
    )
}

pub fn ffmpeg_publish(server: &Server, room: &Room, presenter: &str, seconds: u32) -> Client {
    ffmpeg_publish_sized(server, room, presenter, seconds, "640x360")
}

/// ffmpeg 9's WHIP muxer publishing a `size` (e.g. `320x180`) test picture and a tone.
pub fn ffmpeg_publish_sized(server: &Server, room: &Room, presenter: &str, seconds: u32, size: &str) -> Client {
    let source = format!("testsrc2=size={size}:rate=30");
    let url = server.url(&format!("/whip/{}?presenter={presenter}", room.id));
    let ffmpeg = ffmpeg();
    let seconds = seconds.to_string();
    Client::spawn(
        "ffmpeg WHIP muxer",
        &ffmpeg,
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            &source,
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
            "-t",
            &seconds,
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-f",
            "whip",
            "-authorization",
            &room.publish_token,
            &url,
        ],
    )
}

fn node() -> PathBuf {
    PathBuf::from("node")
}

pub fn chromium_publish(server: &Server, room: &Room, presenter: &str, seconds: u32) -> Client {
    // The presenter name is typed into the page's field through the query-less page: the
    // page's default is "main"; other names go through the URL fragment.
    let url = server.url(&format!("/publish/{}#token={}&presenter={presenter}", room.id, room.publish_token));
    Client::spawn(
        "Chromium publisher",
        &node(),
        &["scripts/clients/browser.mjs", "publish", &url, "--seconds", &seconds.to_string()],
    )
}

pub fn chromium_play(server: &Server, room: &Room, presenter: Option<&str>, seconds: u32, min_frames: u32) -> Client {
    let query = presenter.map(|p| format!("&presenter={p}")).unwrap_or_default();
    let url = server.url(&format!("/stage/{}?autoplay{query}", room.id));
    Client::spawn(
        "Chromium player",
        &node(),
        &[
            "scripts/clients/browser.mjs",
            "play",
            &url,
            "--seconds",
            &seconds.to_string(),
            "--min-frames",
            &min_frames.to_string(),
        ],
    )
}
