//! Replays pushed to a real S3-compatible server (s3s-fs, which checks SigV4 signatures,
//! started here on loopback; `scripts/setup.sh` installs it): every segment a live run made is
//! in the bucket, in order, the bucket's playlist never names a missing object and plays to its
//! end; the S3 server stopped for 10 s mid-run loses nothing; wrong credentials are reported at
//! start-up and in /healthz; deleting the room removes its objects.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hls::wait_program;
use common::{Server, ffmpeg_publish, root};

const KEY: &str = "townhall-test-key";
const SECRET: &str = "townhall-test-secret";

/// The s3s-fs binary: `TOWNHALL_S3S_FS`, or where `scripts/setup.sh` installs it.
fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("TOWNHALL_S3S_FS") {
        return path.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(root);
    home.join(".cache/townhall-tools/bin/s3s-fs")
}

/// An s3s-fs server on a loopback port, over a directory (a bucket is a folder in it).
struct S3Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    signed: bool,
}

impl S3Server {
    fn start(dir: &Path) -> S3Server {
        Self::start_with(dir, true)
    }

    /// `signed`: requests must be signed with KEY/SECRET; else anyone may read, as from a
    /// bucket with a public-read policy.
    fn start_with(dir: &Path, signed: bool) -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = S3Server { child: None, port, dir: dir.to_owned(), signed };
        server.resume();
        server
    }

    /// (Re)starts it on the same port and directory.
    fn resume(&mut self) {
        let port = self.port.to_string();
        let mut args = vec!["--host", "127.0.0.1", "--port", &port];
        if self.signed {
            args.extend(["--access-key", KEY, "--secret-key", SECRET]);
        }
        let child = Command::new(s3s_fs())
            .args(&args)
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn s3_env<'a>(s3: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TOWNHALL_S3_ENDPOINT", s3),
        ("TOWNHALL_S3_BUCKET", "replays"),
        ("TOWNHALL_S3_PREFIX", "events/"),
        ("TOWNHALL_S3_ACCESS_KEY_ID", KEY),
        ("TOWNHALL_S3_SECRET_ACCESS_KEY", secret),
    ]
}

fn segments_listed(playlist: &str) -> Vec<String> {
    playlist.lines().filter(|l| l.starts_with("seg-")).map(str::to_owned).collect()
}

fn healthz(server: &Server) -> serde_json::Value {
    server.request("GET", "/healthz", &[], b"").json()
}

#[test]
fn replays_reach_the_bucket_in_order_and_an_outage_loses_nothing() {
    let bucket_root = std::env::temp_dir().join(format!("townhall-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&bucket_root);
    std::fs::create_dir_all(bucket_root.join("replays")).unwrap();
    let mut s3 = S3Server::start(&bucket_root);
    let endpoint = s3.endpoint();
    let server = Server::start_with(&s3_env(&endpoint, SECRET));
    assert_eq!(healthz(&server)["s3"]["ok"], true, "{}", healthz(&server));
    let room = server.create_room();
    let in_bucket = bucket_root.join("replays/events").join(&room.id);
    let bucket_playlist = || std::fs::read_to_string(in_bucket.join("replay.m3u8")).unwrap_or_default();
    let _publisher = ffmpeg_publish(&server, &room, "main", 90);
    wait_program(&server, &room);
    server.wait_for("two segments in the bucket", Duration::from_secs(60), |_| {
        segments_listed(&bucket_playlist()).len() >= 2
    });

    // The S3 server goes away for 10 s while the program goes on.
    s3.stop();
    let down_since = Instant::now();
    server.wait_for("/healthz to report the outage", Duration::from_secs(60), |s| healthz(s)["status"] == "degraded");
    server.wait_for("segments waiting on disk", Duration::from_secs(60), |s| {
        healthz(s)["s3"]["backlog_segments"].as_u64().unwrap_or(0) > 0
    });
    let health = healthz(&server);
    assert!(health["s3"]["error"].as_str().is_some_and(|e| e.contains("PutObject")), "{health}");
    server.wait_for("ten seconds of outage", Duration::from_secs(30), |_| {
        down_since.elapsed() >= Duration::from_secs(10)
    });
    s3.resume();
    server.wait_for("the backlog to drain", Duration::from_secs(90), |s| {
        let h = healthz(s);
        h["status"] == "ok" && h["s3"]["backlog_segments"] == 0
    });

    // The event ends; the bucket's playlist becomes VOD.
    let host = format!("Bearer {}", room.host_token);
    assert_eq!(
        server.request("POST", &format!("/api/rooms/{}/end", room.id), &[("Authorization", &host)], b"").status,
        200
    );
    server.wait_for("the VOD playlist in the bucket", Duration::from_secs(60), |_| {
        bucket_playlist().ends_with("#EXT-X-ENDLIST\n")
    });

    // Every segment of the replay is in the bucket, byte for byte, listed in order.
    let local_dir = server.data_dir.join("hls").join(&room.id);
    let local = std::fs::read_to_string(local_dir.join("replay.m3u8")).unwrap();
    let listed = segments_listed(&bucket_playlist());
    assert_eq!(listed, segments_listed(&local), "the bucket lists what the server's replay lists");
    assert!(listed.len() >= 8, "{listed:?}");
    let numbers: Vec<u64> = listed.iter().map(|s| s[4..s.len() - 4].parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missing: {numbers:?}");
    for name in &listed {
        let remote = std::fs::read(in_bucket.join(name)).unwrap_or_else(|e| panic!("{name} not in the bucket: {e}"));
        assert_eq!(remote, std::fs::read(local_dir.join(name)).unwrap(), "{name} differs");
    }
    // What the bucket holds plays to its end straight from the bucket's URL (a second s3s-fs
    // on the same storage, readable by anyone, as a public-read bucket or a CDN in front is),
    // with the content types and cache rules the pusher set.
    let public = S3Server::start_with(&bucket_root, false);
    let url = format!("{}/replays/events/{}/replay.m3u8", public.endpoint(), room.id);
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i", &url, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let port = public.port;
    let head = |path: String| common::http(([127, 0, 0, 1], port).into(), "HEAD", &path, &[], b"");
    let playlist_head = head(format!("/replays/events/{}/replay.m3u8", room.id));
    assert_eq!(playlist_head.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(playlist_head.header("cache-control"), Some("public, max-age=3600"), "VOD once ended");
    let segment_head = head(format!("/replays/events/{}/{}", room.id, listed[0]));
    assert_eq!(segment_head.header("content-type"), Some("video/iso.segment"));
    assert_eq!(segment_head.header("cache-control"), Some("public, max-age=31536000, immutable"));
    drop(public);
    let metrics = server.request("GET", "/metrics", &[], b"").text();
    assert!(metrics.contains("townhall_s3_push_failures_total"), "{metrics}");

    // Deleting the room removes its objects.
    let admin = format!("Bearer {}", common::ADMIN_TOKEN);
    assert_eq!(
        server.request("DELETE", &format!("/api/rooms/{}", room.id), &[("Authorization", &admin)], b"").status,
        204
    );
    server.wait_for("the room's objects to go", Duration::from_secs(30), |_| {
        !in_bucket.join("replay.m3u8").exists() && !in_bucket.join(&listed[0]).exists()
    });
    drop(s3);
    let _ = std::fs::remove_dir_all(bucket_root);
}

#[test]
fn wrong_s3_credentials_are_reported_at_start_up_and_in_healthz() {
    let bucket_root = std::env::temp_dir().join(format!("townhall-s3-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&bucket_root);
    std::fs::create_dir_all(bucket_root.join("replays")).unwrap();
    let s3 = S3Server::start(&bucket_root);
    let endpoint = s3.endpoint();
    let server = Server::start_with(&s3_env(&endpoint, "not-the-secret"));
    let health = healthz(&server);
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["s3"]["ok"], false, "{health}");
    assert!(health["s3"]["error"].as_str().unwrap().contains("access key or secret is wrong"), "{health}");
    assert!(server.log_text().contains("S3 is not usable"), "start-up log: {}", server.log_text());
    // An S3 section without a bucket is refused before anything starts.
    let refused = Command::new(env!("CARGO_BIN_EXE_townhall"))
        .args(["config"])
        .env("TOWNHALL_S3_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("s3.bucket"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(s3);
    let _ = std::fs::remove_dir_all(bucket_root);
}
