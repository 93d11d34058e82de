//! `ws_viewers`: a load generator for the interaction WebSocket `/ws/{room}` (RFC 6455; the
//! protocol is in `src/http/ws.rs`). It is not part of the server: it is an example of the root
//! package so that it builds with the workspace; `scripts/bench/ws_viewers.py` drives it
//! (docs/BENCHMARKS.md, "WebSocket viewers in one room").
//!
//! ```text
//! ws_viewers ws://127.0.0.1:PORT/ws/ROOM --host-token T [--viewers 10000] [--ramp 10]
//!            [--sources 4] [--settle 2] [--vote-window 10] [--chat-rate 100]
//!            [--chat-seconds 20] [--timeout 30] [--scenarios vote,chat] [--seed 1]
//! ```
//!
//! `--viewers` attendees (no token: each gets a new identity) connect over loopback, evenly
//! spread over `--ramp` seconds, each from one of `--sources` local addresses 127.0.0.1,
//! 127.0.0.2, … (one ephemeral port range each), and read everything the server sends from
//! then on, each on its own task. One host (the room's host token) runs on its own thread with
//! its own runtime, so that its sends keep their schedule however busy the viewers' threads are.
//! Times are instants of this one process's monotonic clock: a delay is a receipt instant
//! minus a send instant, with no clock skew to correct.
//!
//! Scenarios, after every viewer has its `welcome` and `--settle` seconds:
//! - **vote** ("please vote now"): the host creates a poll of 4 options and opens it; each viewer
//!   votes once (option `i % 4`) at open + a uniformly random offset within `--vote-window`
//!   (at once if `poll_opened` reached it later than that). Figures: `all_acked_s`, the time
//!   from the host's `poll_open` send until the last viewer's ack arrived; ack latency (vote sent
//!   → its ack) p50/p99/max; errors by code; the delay of `poll_opened` (host's send → receipt)
//!   over all viewers; then the host closes the poll and `poll_closed` must count every vote
//!   (`counts` sum = `voters` = viewers, per option as voted), at every viewer.
//! - **chat**: the host sends `chat_send` at `--chat-rate` messages per second for
//!   `--chat-seconds` (hosts skip the rate limits); every viewer records the receipt of each
//!   message. Delivery delay = receipt − the host's send instant, over every (message, viewer)
//!   pair: p50/p99/max; `lost` = viewers × messages − pairs received, duplicates. The run waits
//!   for the deliveries after the last send until none are missing, or none came for 5 s, or
//!   `--timeout`.
//!
//! A viewer told to `resync` (it fell more than `websocket.queue_events` behind) does what a
//! client does: after a random pause of up to 1 s it reconnects as the same participant with
//! `since`, gets what it missed, and sends its vote again if the answer may have been lost (the
//! nonce makes that harmless); `resyncs` counts the notices, `viewers_resynced` the viewers
//! that had at least one. The host, told to resync or cut off, reconnects at once and sends a
//! command again when its event did not come within 3 s.
//!
//! Output on stdout, one JSON object per line: marks `{"mark":"vote_begin","t":…}` (seconds
//! since start) when a measurement window opens or closes (the driver samples CPU at them),
//! then the figures: `{"scenario":"connect",…}`, `{"scenario":"vote",…}`,
//! `{"scenario":"chat",…}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

mod host;
mod summary;
mod viewer;

use host::*;
use summary::*;
use viewer::*;

/// Options of the poll; viewer `i` votes for `i % POLL_OPTIONS`.
const POLL_OPTIONS: usize = 4;
/// Prefix of the chat texts; the message's index follows.
const CHAT_PREFIX: &str = "bench-";
/// The chat phase gives up waiting for deliveries when none came for this long.
const QUIET_GIVE_UP: Duration = Duration::from_secs(5);
/// A viewer gives up after this many `resync` notices.
const MAX_RESYNCS: u32 = 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args) {
        Ok(config) => Arc::new(config),
        Err(message) => {
            eprintln!("ws_viewers: {message}\nusage: see the top of examples/ws_viewers.rs");
            std::process::exit(2);
        }
    };
    if let Err(message) = raise_fd_limit(config.viewers as u64 + 200) {
        eprintln!("ws_viewers: {message}");
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let outcome = runtime.block_on(run(config));
    // Viewer connections still open end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Err(message) => {
            eprintln!("ws_viewers: {message}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug)]
struct Config {
    server: SocketAddr,
    /// `/ws/{room}`.
    path: String,
    host_token: String,
    viewers: usize,
    ramp: Duration,
    sources: u8,
    settle: Duration,
    vote_window: Duration,
    chat_rate: u32,
    chat_seconds: Duration,
    timeout: Duration,
    vote: bool,
    chat: bool,
    seed: u64,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mut config = Config {
            server: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: String::new(),
            host_token: String::new(),
            viewers: 10_000,
            ramp: Duration::from_secs(10),
            sources: 4,
            settle: Duration::from_secs(2),
            vote_window: Duration::from_secs(10),
            chat_rate: 100,
            chat_seconds: Duration::from_secs(20),
            timeout: Duration::from_secs(30),
            vote: true,
            chat: true,
            seed: 1,
        };
        let seconds = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{v:?} is not a number of seconds (0-3600)"))
        };
        let count = |v: &str, max: u64| -> Result<u64, String> {
            v.parse::<u64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| format!("{v:?}: 1-{max}"))
        };
        let mut url = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = || rest.next().map(String::as_str).ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--host-token" => config.host_token = value()?.to_owned(),
                "--viewers" => config.viewers = count(value()?, 1_000_000)? as usize,
                "--ramp" => config.ramp = seconds(value()?)?,
                "--sources" => config.sources = count(value()?, 250)? as u8,
                "--settle" => config.settle = seconds(value()?)?,
                "--vote-window" => config.vote_window = seconds(value()?)?,
                "--chat-rate" => config.chat_rate = count(value()?, 10_000)? as u32,
                "--chat-seconds" => config.chat_seconds = seconds(value()?)?,
                "--timeout" => config.timeout = seconds(value()?)?.max(Duration::from_secs(1)),
                "--seed" => config.seed = value()?.parse().map_err(|_| format!("{arg}: a number"))?,
                "--scenarios" => {
                    let list = value()?;
                    config.vote = false;
                    config.chat = false;
                    for scenario in list.split(',') {
                        match scenario {
                            "vote" => config.vote = true,
                            "chat" => config.chat = true,
                            other => return Err(format!("unknown scenario {other:?}: vote, chat")),
                        }
                    }
                }
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                other if url.is_none() => url = Some(other.to_owned()),
                other => return Err(format!("one URL only ({other:?})")),
            }
        }
        let url = url.ok_or("give the room's WebSocket URL, ws://127.0.0.1:PORT/ws/ROOM")?;
        let rest = url.strip_prefix("ws://").ok_or_else(|| format!("{url:?}: only ws:// URLs"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        config.server = authority
            .parse()
            .map_err(|_| format!("{url:?}: give a loopback IPv4 address and a port, e.g. 127.0.0.1:8080"))?;
        if !matches!(config.server, SocketAddr::V4(a) if a.ip().is_loopback()) {
            return Err(format!("{url:?}: loopback IPv4 addresses only"));
        }
        if !path.starts_with("/ws/") || path.contains('?') {
            return Err(format!("{url:?}: the path is /ws/ROOM, without a query"));
        }
        config.path = path.to_owned();
        if config.host_token.is_empty() {
            return Err("--host-token is needed (the room's host_token from POST /api/rooms)".into());
        }
        Ok(config)
    }

    fn chat_messages(&self) -> usize {
        if self.chat { (self.chat_rate as f64 * self.chat_seconds.as_secs_f64()).round() as usize } else { 0 }
    }
}

/// Raises the soft limit of open files to `needed` (one socket per viewer), within the hard
/// limit.
fn raise_fd_limit(needed: u64) -> Result<(), String> {
    #[repr(C)]
    struct Rlimit {
        current: u64,
        max: u64,
    }
    unsafe extern "C" {
        fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut limit = Rlimit { current: 0, max: 0 };
    // SAFETY: `limit` is a valid `struct rlimit` (two `rlim_t`, 64-bit on Linux) for the call.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err("getrlimit(RLIMIT_NOFILE) failed".into());
    }
    if limit.current < needed {
        limit.current = needed.min(limit.max);
        // SAFETY: as above.
        if unsafe { setrlimit(RLIMIT_NOFILE, &limit) } != 0 {
            return Err("setrlimit(RLIMIT_NOFILE) failed".into());
        }
    }
    if limit.current < needed {
        return Err(format!("{needed} open files needed, the hard limit is {}: raise it (ulimit -Hn)", limit.max));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What the viewers and the host share

struct Shared {
    t0: Instant,
    welcomed: AtomicUsize,
    /// Viewers that could not connect.
    connect_failed: AtomicUsize,
    /// Viewers whose connection ended before the stop (after their welcome).
    ended: AtomicUsize,
    /// When the host sent `poll_open`, µs since `t0` + 1 (0: not yet).
    poll_open_sent: AtomicU64,
    /// Viewers whose vote got its ack or error.
    votes_answered: AtomicUsize,
    polls_closed_seen: AtomicUsize,
    /// Per chat message: when the host sent it, µs since `t0` + 1 (0: not yet).
    chat_sent: Vec<AtomicU64>,
    chat_received: AtomicU64,
    /// Whether the chat scenario runs (for its own count of resyncs).
    chatting: std::sync::atomic::AtomicBool,
    resyncs: AtomicUsize,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    fn mark(&self, mark: &str) {
        let line = json!({"mark": mark, "t": self.t0.elapsed().as_secs_f64()});
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

type Socket = WebSocketStream<TcpStream>;

/// Connects from `source` and reads the `welcome`.
async fn connect(config: &Config, source: Ipv4Addr, query: &str) -> Result<(Socket, Value), String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0))).map_err(|e| format!("bind: {e}"))?;
    let stream = socket.connect(config.server).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let url = format!("ws://{}{}?{query}", config.server, config.path);
    // Small buffers: 10,000 sockets with tungstenite's default 128 KiB read buffer would take
    // 1.3 GB; the server's messages are a few hundred bytes.
    let ws_config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let welcome: Value = serde_json::from_str(&text).map_err(|e| format!("welcome: {e}"))?;
                if welcome["type"] != "welcome" {
                    return Err(format!("first message is not a welcome: {text}"));
                }
                return Ok((socket, welcome));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("before welcome: {e}")),
            None => return Err("closed before welcome".into()),
        }
    }
}

async fn run(config: Arc<Config>) -> Result<Vec<Value>, String> {
    let shared = Arc::new(Shared {
        t0: Instant::now(),
        welcomed: AtomicUsize::new(0),
        connect_failed: AtomicUsize::new(0),
        ended: AtomicUsize::new(0),
        poll_open_sent: AtomicU64::new(0),
        votes_answered: AtomicUsize::new(0),
        polls_closed_seen: AtomicUsize::new(0),
        chat_sent: (0..config.chat_messages()).map(|_| AtomicU64::new(0)).collect(),
        chat_received: AtomicU64::new(0),
        chatting: std::sync::atomic::AtomicBool::new(false),
        resyncs: AtomicUsize::new(0),
    });
    let counts = Arc::new(HostCounts::default());
    let host = start_host(config.clone(), shared.clone(), counts.clone())?;
    let host_call = |command: HostCommand| {
        host.send(command).map_err(|_| "the host thread ended".to_string())?;
        Ok::<(), String>(())
    };

    // Viewers, spread over the ramp.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let n = config.viewers;
    let begin = Instant::now();
    let viewers: Vec<_> = (0..n)
        .map(|index| {
            let viewer = Viewer {
                index,
                shared: shared.clone(),
                vote_offset: config.vote_window.mul_f64(rng.random::<f64>()),
                report: ViewerReport::default(),
                poll: None,
                vote_sent_us: None,
            };
            let start = begin + config.ramp.mul_f64(index as f64 / n as f64);
            tokio::spawn(viewer.run(config.clone(), start, stop_rx.clone()))
        })
        .collect();
    let deadline = begin + config.ramp + config.timeout;
    while shared.welcomed.load(Ordering::Relaxed) + shared.connect_failed.load(Ordering::Relaxed) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected_s = begin.elapsed().as_secs_f64();
    // Viewers connected and still there.
    let alive = || shared.welcomed.load(Ordering::Relaxed).saturating_sub(shared.ended.load(Ordering::Relaxed));
    shared.mark("connected");
    tokio::time::sleep(config.settle).await;

    // Vote.
    let mut vote = None;
    if config.vote {
        shared.mark("vote_begin");
        let (tx, rx) = oneshot::channel();
        host_call(HostCommand::OpenPoll(tx))?;
        let poll = rx.await.map_err(|_| "the host thread ended")??;
        let deadline = Instant::now() + config.vote_window + config.timeout;
        while shared.votes_answered.load(Ordering::Relaxed) < alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shared.mark("vote_end");
        let (tx, rx) = oneshot::channel();
        host_call(HostCommand::ClosePoll(poll, tx))?;
        // A poll the host could not close is reported (`final_error`), not fatal.
        let closed = rx.await.map_err(|_| "the host thread ended")?.unwrap_or_else(|e| json!({"error": e}));
        let deadline = Instant::now() + config.timeout;
        while shared.polls_closed_seen.load(Ordering::Relaxed) < alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        vote = Some(closed);
        tokio::time::sleep(config.settle).await;
    }

    // Chat.
    let mut chat = None;
    if config.chat {
        let alive_at_start = alive();
        shared.chatting.store(true, Ordering::Relaxed);
        let host_resyncs_before = counts.resync.load(Ordering::Relaxed);
        shared.mark("chat_begin");
        let (tx, rx) = oneshot::channel();
        host_call(HostCommand::Chat(tx))?;
        let sent = rx.await.map_err(|_| "the host thread ended")?;
        shared.mark("chat_end");
        let expected = (alive_at_start * sent.sent) as u64;
        let last_send = Instant::now();
        let deadline = last_send + config.timeout;
        let (mut seen, mut progress) = (0, Instant::now());
        loop {
            let received = shared.chat_received.load(Ordering::Relaxed);
            let answered =
                counts.chat_acks.load(Ordering::Relaxed) as usize + counts.chat_errors().values().sum::<u64>() as usize;
            let done = received >= expected && answered >= sent.sent;
            if done || Instant::now() > deadline || progress.elapsed() > QUIET_GIVE_UP {
                break;
            }
            if received != seen {
                (seen, progress) = (received, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let host_resyncs = counts.resync.load(Ordering::Relaxed) - host_resyncs_before;
        chat = Some((sent, alive_at_start, last_send.elapsed().as_secs_f64(), host_resyncs));
    }

    let _ = stop_tx.send(true);
    let mut reports = Vec::with_capacity(n);
    for viewer in viewers {
        reports.push(viewer.await.map_err(|e| format!("a viewer panicked: {e}"))?);
    }

    let mut lines = vec![connect_summary(&config, &reports, connected_s)];
    if let Some(closed) = vote {
        lines.push(vote_summary(&config, &shared, &counts, &reports, &closed));
    }
    if let Some((sent, alive, drain_s, host_resyncs)) = chat {
        lines.push(chat_summary(&counts, &reports, &sent, alive, drain_s, host_resyncs));
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------------
// Figures
