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

/// Classifies an error message for the counts: its kind without addresses or numbers.
fn error_kind(message: &str) -> String {
    message.split(':').take(2).collect::<Vec<_>>().join(":").trim().chars().take(60).collect()
}

/// The index of a chat message of this benchmark, read without parsing the JSON (the viewers
/// read up to a million of them per second; a full parse would cost more than the rest).
fn chat_index(text: &str) -> Option<usize> {
    if !text.contains(r#""type":"chat_message""#) {
        return None;
    }
    let marker = format!(r#""text":"{CHAT_PREFIX}"#);
    let start = text.find(&marker)? + marker.len();
    let digits = text[start..].split('"').next()?;
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Viewers

#[derive(Debug, Default)]
struct ViewerReport {
    connect_error: Option<String>,
    connect_us: Option<u64>,
    poll_opened_delay_us: Option<u64>,
    vote_ack_us: Option<u64>,
    vote_acked_at_us: Option<u64>,
    vote_error: Option<String>,
    poll_closed: Option<Value>,
    poll_results: u32,
    /// Per chat message: the delivery delay in µs (`u32::MAX`: not received).
    chat_delays: Vec<u32>,
    chat_duplicates: u32,
    resyncs: u32,
    /// Of them, during the chat scenario.
    chat_resyncs: u32,
    /// Why the connection ended before the stop.
    ended: Option<String>,
}

struct Viewer {
    index: usize,
    shared: Arc<Shared>,
    vote_offset: Duration,
    report: ViewerReport,
    /// The open poll to vote in, once `poll_opened` came.
    poll: Option<String>,
    vote_sent_us: Option<u64>,
}

/// What a viewer does after a message.
enum Flow {
    Go,
    /// Told to resync from this seq: the server closes the connection next.
    Resync(u64),
}

impl Viewer {
    async fn run(mut self, config: Arc<Config>, start: Instant, mut stop: watch::Receiver<bool>) -> ViewerReport {
        tokio::time::sleep_until(start.into()).await;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (self.index % config.sources as usize) as u8);
        let name = format!("name=viewer{}", self.index);
        let connect_once = |query: String| {
            let config = config.clone();
            async move {
                tokio::time::timeout(config.timeout, connect(&config, source, &query))
                    .await
                    .unwrap_or_else(|_| Err("timeout".into()))
            }
        };
        let (socket, welcome) = match connect_once(name.clone()).await {
            Ok(connected) => connected,
            Err(message) => {
                self.report.connect_error = Some(error_kind(&message));
                self.shared.connect_failed.fetch_add(1, Ordering::Relaxed);
                return self.report;
            }
        };
        self.report.connect_us = Some(start.elapsed().as_micros() as u64);
        self.shared.welcomed.fetch_add(1, Ordering::Relaxed);
        // The attendee identity, to come back as the same participant after a resync.
        let token = welcome["token"].as_str().unwrap_or_default().to_owned();
        let (mut sink, mut stream) = socket.split();

        let vote_timer = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(vote_timer);
        loop {
            let voting = self.poll.is_some() && self.vote_sent_us.is_none();
            let resync = tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = &mut vote_timer, if voting => {
                    self.vote_sent_us = Some(self.shared.now_us());
                    if let Err(e) = sink.send(self.vote()).await {
                        self.end(format!("send: {e}"));
                        break;
                    }
                    continue;
                }
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => match self.on_text(&text, &mut vote_timer) {
                        Flow::Go => continue,
                        Flow::Resync(seq) => seq,
                    },
                    Some(Ok(Message::Close(frame))) => {
                        self.end(format!("closed {}", frame.map_or(0, |f| u16::from(f.code))));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        self.end(error_kind(&e.to_string()));
                        break;
                    }
                    None => {
                        self.end("closed".into());
                        break;
                    }
                },
            };
            // Told to resync: come back with `since` as a client does, after a random pause of
            // up to a second so that the viewers cut off together do not all return at once.
            if self.report.resyncs > MAX_RESYNCS {
                self.end("too many resyncs".into());
                break;
            }
            drop((sink, stream));
            let pause = Duration::from_millis(rand::rng().random_range(0..1000));
            tokio::select! {
                _ = stop.changed() => return self.report,
                _ = tokio::time::sleep(pause) => {}
            }
            match connect_once(format!("{name}&token={token}&since={resync}")).await {
                Ok((socket, _)) => (sink, stream) = socket.split(),
                Err(message) => {
                    self.end(format!("reconnect: {}", error_kind(&message)));
                    break;
                }
            }
            // A vote sent on the old connection may have lost its answer: send it again (its
            // nonce makes the repeat harmless: the answer is the first one's).
            let unanswered = self.report.vote_acked_at_us.is_none() && self.report.vote_error.is_none();
            if self.vote_sent_us.is_some()
                && unanswered
                && let Err(e) = sink.send(self.vote()).await
            {
                self.end(format!("send: {e}"));
                break;
            }
        }
        self.report
    }

    fn vote(&self) -> Message {
        let poll = self.poll.as_deref().unwrap_or_default();
        let vote = json!({"type": "poll_vote", "poll": poll, "options": [self.index % POLL_OPTIONS], "nonce": "vote"});
        Message::text(vote.to_string())
    }

    fn end(&mut self, why: String) {
        self.report.ended = Some(why);
        self.shared.ended.fetch_add(1, Ordering::Relaxed);
    }

    fn on_text(&mut self, text: &str, vote_timer: &mut std::pin::Pin<&mut tokio::time::Sleep>) -> Flow {
        let now = self.shared.now_us();
        if let Some(index) = chat_index(text) {
            let sent = self.shared.chat_sent.get(index).map_or(0, |s| s.load(Ordering::Acquire));
            if sent == 0 {
                return Flow::Go;
            }
            if self.report.chat_delays.is_empty() {
                self.report.chat_delays = vec![u32::MAX; self.shared.chat_sent.len()];
            }
            let slot = &mut self.report.chat_delays[index];
            if *slot == u32::MAX {
                *slot = now.saturating_sub(sent - 1).min(u32::MAX as u64 - 1) as u32;
                self.shared.chat_received.fetch_add(1, Ordering::Relaxed);
            } else {
                self.report.chat_duplicates += 1;
            }
            return Flow::Go;
        }
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Flow::Go;
        };
        match message["type"].as_str().unwrap_or_default() {
            "poll_opened" if self.poll.is_none() => {
                let opened = self.shared.poll_open_sent.load(Ordering::Acquire).saturating_sub(1);
                self.report.poll_opened_delay_us = Some(now.saturating_sub(opened));
                self.poll = message["id"].as_str().map(str::to_owned);
                let at = self.shared.t0 + Duration::from_micros(opened) + self.vote_offset;
                vote_timer.as_mut().reset(at.into());
            }
            "ack" if message["nonce"] == "vote" => {
                self.report.vote_ack_us = self.vote_sent_us.map(|sent| now.saturating_sub(sent));
                self.report.vote_acked_at_us = Some(now);
                self.shared.votes_answered.fetch_add(1, Ordering::Relaxed);
            }
            "error" if message["nonce"] == "vote" => {
                self.report.vote_error = Some(message["code"].as_str().unwrap_or("?").to_owned());
                self.shared.votes_answered.fetch_add(1, Ordering::Relaxed);
            }
            "poll_results" => self.report.poll_results += 1,
            "poll_closed" if self.report.poll_closed.is_none() => {
                self.report.poll_closed = Some(message);
                self.shared.polls_closed_seen.fetch_add(1, Ordering::Relaxed);
            }
            "resync" => {
                self.report.resyncs += 1;
                if self.shared.chatting.load(Ordering::Relaxed) {
                    self.report.chat_resyncs += 1;
                }
                self.shared.resyncs.fetch_add(1, Ordering::Relaxed);
                return Flow::Resync(message["seq"].as_u64().unwrap_or(0));
            }
            _ => {}
        }
        Flow::Go
    }
}

// ---------------------------------------------------------------------------------------------
// The host: on its own thread, driven by commands

enum HostCommand {
    /// Creates a poll and opens it; answers the poll's id.
    OpenPoll(oneshot::Sender<Result<String, String>>),
    /// Closes it; answers its `poll_closed` event.
    ClosePoll(String, oneshot::Sender<Result<Value, String>>),
    /// Sends the chat; answers when the last message is sent.
    Chat(oneshot::Sender<ChatSent>),
}

#[derive(Debug, Default)]
struct ChatSent {
    sent: usize,
    /// How late each send was against its schedule: p99 and max, ms.
    late_p99_ms: f64,
    late_max_ms: f64,
    seconds: f64,
}

/// What the host's reader counts.
#[derive(Debug, Default)]
struct HostCounts {
    chat_acks: AtomicU64,
    chat_errors: Mutex<BTreeMap<String, u64>>,
    votes_seen: AtomicU64,
    resync: AtomicU64,
}

impl HostCounts {
    fn chat_errors(&self) -> BTreeMap<String, u64> {
        self.chat_errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The host's sending half: replaced when the host reconnects after a `resync`.
type HostSink = Arc<tokio::sync::Mutex<SplitSink<Socket, Message>>>;

fn host_query(config: &Config, since: Option<u64>) -> String {
    let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
    format!("token={}&name=Host{since}", config.host_token)
}

/// Starts the host on its own thread; its commands go through the returned sender.
fn start_host(
    config: Arc<Config>,
    shared: Arc<Shared>,
    counts: Arc<HostCounts>,
) -> Result<mpsc::UnboundedSender<HostCommand>, String> {
    let (commands, mut receiver) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("host".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
            runtime.block_on(async move {
                let (sink, stream) = match connect(&config, Ipv4Addr::LOCALHOST, &host_query(&config, None)).await {
                    Ok((socket, welcome)) if welcome["participant"]["role"] == "host" => socket.split(),
                    Ok((_, welcome)) => {
                        let _ = ready_tx.send(Err(format!("the host token did not make a host: {welcome}")));
                        return;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("host: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let sink: HostSink = Arc::new(tokio::sync::Mutex::new(sink));
                let (replies_tx, mut replies) = mpsc::unbounded_channel();
                tokio::spawn(host_reader(config.clone(), stream, sink.clone(), counts, replies_tx));
                while let Some(command) = receiver.recv().await {
                    match command {
                        HostCommand::OpenPoll(answer) => {
                            let _ = answer.send(open_poll(&sink, &mut replies, &shared, &config).await);
                        }
                        HostCommand::ClosePoll(poll, answer) => {
                            let _ = answer.send(close_poll(&sink, &mut replies, &poll, &config).await);
                        }
                        HostCommand::Chat(answer) => {
                            let _ = answer.send(send_chat(&sink, &shared, &config).await);
                        }
                    }
                }
            });
        })
        .map_err(|e| format!("host thread: {e}"))?;
    ready_rx.recv().map_err(|_| "the host thread ended".to_string())??;
    Ok(commands)
}

/// Reads everything the host gets: counts chat acks and votes, passes the rest on. Told to
/// `resync`, or cut off, it reconnects with `since` as a client does (the missed events come
/// first), so that the host can go on; the `resync` notices are counted.
async fn host_reader(
    config: Arc<Config>,
    mut stream: SplitStream<Socket>,
    sink: HostSink,
    counts: Arc<HostCounts>,
    replies: mpsc::UnboundedSender<Value>,
) {
    // The last event the host has, and how many times it came back.
    let (mut last_seq, mut reconnects) = (None, 0);
    loop {
        let since = match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(seq) = message["seq"].as_u64() {
                    last_seq = Some(seq);
                }
                match host_message(message, &counts, &replies) {
                    Some(since) => Some(since),
                    None => continue,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                eprintln!("ws_viewers: the host's connection was closed ({frame:?})");
                last_seq
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                eprintln!("ws_viewers: the host's connection failed ({e})");
                last_seq
            }
            None => last_seq,
        };
        reconnects += 1;
        if reconnects > MAX_RESYNCS {
            eprintln!("ws_viewers: the host gives up after {MAX_RESYNCS} reconnections");
            return;
        }
        match connect(&config, Ipv4Addr::LOCALHOST, &host_query(&config, since)).await {
            Ok((socket, _)) => {
                let (new_sink, new_stream) = socket.split();
                *sink.lock().await = new_sink;
                stream = new_stream;
                eprintln!("ws_viewers: the host reconnected with since={since:?}");
            }
            Err(e) => {
                eprintln!("ws_viewers: the host could not reconnect: {e}");
                return;
            }
        }
    }
}

/// Counts or passes on one message to the host; after a `resync` notice, its seq.
fn host_message(message: Value, counts: &HostCounts, replies: &mpsc::UnboundedSender<Value>) -> Option<u64> {
    let nonce = message["nonce"].as_str().unwrap_or_default();
    match message["type"].as_str().unwrap_or_default() {
        "poll_voted" => {
            counts.votes_seen.fetch_add(1, Ordering::Relaxed);
        }
        "ack" if nonce.starts_with("chat-") => {
            counts.chat_acks.fetch_add(1, Ordering::Relaxed);
        }
        "error" if nonce.starts_with("chat-") => {
            let code = message["code"].as_str().unwrap_or("?").to_owned();
            *counts.chat_errors.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
        }
        "poll_results" | "chat_message" => {}
        "resync" => {
            counts.resync.fetch_add(1, Ordering::Relaxed);
            return message["seq"].as_u64();
        }
        _ => {
            let _ = replies.send(message);
        }
    }
    None
}

/// Sends a command and waits for the first reply that `wanted` accepts (an `error` with its
/// nonce fails). Sent again every 3 s without it: sent just before a `resync`, it may never
/// have been read (the nonce makes a repeat harmless; the events come again after `since`).
async fn command(
    sink: &HostSink,
    replies: &mut mpsc::UnboundedReceiver<Value>,
    command: Value,
    timeout: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let nonce = command["nonce"].as_str().unwrap_or_default().to_owned();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        host_send(sink, &command, timeout).await?;
        let again = (tokio::time::Instant::now() + Duration::from_secs(3)).min(deadline);
        loop {
            let message = match tokio::time::timeout_at(again, replies.recv()).await {
                Ok(message) => message.ok_or("the host's connection ended")?,
                Err(_) if again >= deadline => return Err(format!("no reply to {nonce} in {timeout:?}")),
                Err(_) => break,
            };
            if message["type"] == "error" && message["nonce"] == nonce.as_str() {
                return Err(format!("{nonce}: {message}"));
            }
            if wanted(&message) {
                return Ok(message);
            }
        }
    }
}

/// Sends a command; while the host reconnects, tries again (the nonce makes a repeat harmless).
async fn host_send(sink: &HostSink, command: &Value, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let sent = sink.lock().await.send(Message::text(command.to_string())).await;
        match sent {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("host send: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn open_poll(
    sink: &HostSink,
    replies: &mut mpsc::UnboundedReceiver<Value>,
    shared: &Shared,
    config: &Config,
) -> Result<String, String> {
    let options: Vec<String> = (0..POLL_OPTIONS).map(|i| format!("Option {}", i + 1)).collect();
    let create = json!({"type": "poll_create", "question": "Please vote now", "options": options, "nonce": "create"});
    // Events rather than acks: a host that reconnects gets the missed events again.
    let created =
        command(sink, replies, create, config.timeout, |m| m["type"] == "poll_created" && m["nonce"] == "create")
            .await?;
    let poll = created["id"].as_str().ok_or("poll_created without id")?.to_owned();
    shared.poll_open_sent.store(shared.now_us() + 1, Ordering::Release);
    let open = json!({"type": "poll_open", "poll": poll, "nonce": "open"});
    command(sink, replies, open, config.timeout, |m| m["type"] == "poll_opened" && m["nonce"] == "open").await?;
    Ok(poll)
}

async fn close_poll(
    sink: &HostSink,
    replies: &mut mpsc::UnboundedReceiver<Value>,
    poll: &str,
    config: &Config,
) -> Result<Value, String> {
    let close = json!({"type": "poll_close", "poll": poll, "nonce": "close"});
    command(sink, replies, close, config.timeout, |m| m["type"] == "poll_closed" && m["poll"] == poll).await
}

async fn send_chat(sink: &HostSink, shared: &Shared, config: &Config) -> ChatSent {
    let count = shared.chat_sent.len();
    let interval = Duration::from_secs_f64(1.0 / config.chat_rate as f64);
    let start = tokio::time::Instant::now();
    let mut late = Vec::with_capacity(count);
    let mut sent = 0;
    for index in 0..count {
        let due = start + interval * index as u32;
        tokio::time::sleep_until(due).await;
        late.push(due.elapsed().as_secs_f64() * 1000.0);
        let text = format!("{CHAT_PREFIX}{index}");
        shared.chat_sent[index].store(shared.now_us() + 1, Ordering::Release);
        let command = json!({"type": "chat_send", "text": text, "nonce": format!("chat-{index}")});
        if host_send(sink, &command, config.timeout).await.is_err() {
            break;
        }
        sent += 1;
    }
    late.sort_by(f64::total_cmp);
    ChatSent {
        sent,
        late_p99_ms: round1(percentile(&late, 0.99).unwrap_or(0.0)),
        late_max_ms: round1(late.last().copied().unwrap_or(0.0)),
        seconds: start.elapsed().as_secs_f64(),
    }
}

// ---------------------------------------------------------------------------------------------
// The run

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

fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// p50/p99/max of µs values, in ms.
fn distribution_ms(mut values: Vec<u64>) -> Value {
    values.sort_unstable();
    let ms = |v: Option<u64>| v.map(|v| round1(v as f64 / 1000.0));
    json!({
        "count": values.len(),
        "p50": ms(percentile(&values, 0.50)),
        "p99": ms(percentile(&values, 0.99)),
        "max": ms(values.last().copied()),
    })
}

fn tally<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.to_owned()).or_default() += 1;
    }
    counts
}

fn connect_summary(config: &Config, reports: &[ViewerReport], connected_s: f64) -> Value {
    let times: Vec<u64> = reports.iter().filter_map(|r| r.connect_us).collect();
    json!({
        "scenario": "connect",
        "viewers": config.viewers,
        "welcomed": times.len(),
        "ramp_s": config.ramp.as_secs_f64(),
        "all_welcomed_after_s": round1(connected_s),
        "connect_to_welcome_ms": distribution_ms(times),
        "errors": tally(reports.iter().filter_map(|r| r.connect_error.as_deref())),
    })
}

fn vote_summary(
    config: &Config,
    shared: &Shared,
    counts: &HostCounts,
    reports: &[ViewerReport],
    closed: &Value,
) -> Value {
    let opened = shared.poll_open_sent.load(Ordering::Relaxed).saturating_sub(1);
    let voters: Vec<&ViewerReport> = reports.iter().filter(|r| r.connect_us.is_some()).collect();
    let acked: Vec<u64> = voters.iter().filter_map(|r| r.vote_acked_at_us).collect();
    let all_acked = acked.len() == voters.len() && !voters.is_empty();
    let last_ack = acked.iter().max().map(|at| at.saturating_sub(opened) as f64 / 1e6);
    // What the final counts must be: one vote per acked viewer, for option index % 4.
    let mut expected = vec![0u64; POLL_OPTIONS];
    for (index, report) in reports.iter().enumerate() {
        if report.vote_acked_at_us.is_some() {
            expected[index % POLL_OPTIONS] += 1;
        }
    }
    let counts_final: Vec<u64> =
        closed["counts"].as_array().map_or(Vec::new(), |c| c.iter().map(|v| v.as_u64().unwrap_or(0)).collect());
    let same_at_viewers =
        voters.iter().filter(|r| r.poll_closed.as_ref().is_some_and(|c| c["counts"] == closed["counts"])).count();
    let mut results: Vec<u32> = voters.iter().map(|r| r.poll_results).collect();
    results.sort_unstable();
    json!({
        "scenario": "vote",
        "viewers": voters.len(),
        "window_s": config.vote_window.as_secs_f64(),
        "acked": acked.len(),
        "all_acked": all_acked,
        "all_acked_s": last_ack.map(|s| (s * 1000.0).round() / 1000.0),
        "ack_ms": distribution_ms(voters.iter().filter_map(|r| r.vote_ack_us).collect()),
        "errors": tally(voters.iter().filter_map(|r| r.vote_error.as_deref())),
        "poll_opened_ms": distribution_ms(voters.iter().filter_map(|r| r.poll_opened_delay_us).collect()),
        "final_counts": counts_final,
        "final_voters": closed["voters"],
        "final_sum": counts_final.iter().sum::<u64>(),
        "final_counts_as_voted": counts_final == expected,
        "final_error": closed.get("error"),
        "poll_closed_at_viewers": same_at_viewers,
        "poll_results_per_viewer_p50": percentile(&results, 0.5),
        "votes_seen_by_host": counts.votes_seen.load(Ordering::Relaxed),
        "host_resyncs": counts.resync.load(Ordering::Relaxed),
        "resyncs": voters.iter().map(|r| r.resyncs as u64).sum::<u64>(),
        "viewers_resynced": voters.iter().filter(|r| r.resyncs > 0).count(),
        "ended_early": tally(voters.iter().filter_map(|r| r.ended.as_deref())),
    })
}

fn chat_summary(
    counts: &HostCounts,
    reports: &[ViewerReport],
    sent: &ChatSent,
    alive: usize,
    drain_s: f64,
    host_resyncs: u64,
) -> Value {
    let mut delays: Vec<u32> = Vec::new();
    let mut duplicates = 0u64;
    for report in reports {
        delays.extend(report.chat_delays.iter().copied().filter(|d| *d != u32::MAX));
        duplicates += report.chat_duplicates as u64;
    }
    let received = delays.len() as u64;
    let expected = (alive * sent.sent) as u64;
    let ms = |v: Option<u32>| v.map(|v| round1(v as f64 / 1000.0));
    let (p50, p99, max) = if delays.is_empty() {
        (None, None, None)
    } else {
        let len = delays.len();
        let p50 = *delays.select_nth_unstable(len.div_ceil(2) - 1).1;
        let p99 = *delays.select_nth_unstable(((len as f64 * 0.99).ceil() as usize).clamp(1, len) - 1).1;
        let max = delays.iter().copied().max();
        (Some(p50), Some(p99), max)
    };
    let complete = reports
        .iter()
        .filter(|r| !r.chat_delays.is_empty() && r.chat_delays[..sent.sent].iter().all(|d| *d != u32::MAX))
        .count();
    json!({
        "scenario": "chat",
        "viewers": alive,
        "messages": sent.sent,
        "send_seconds": round1(sent.seconds),
        "send_late_ms": {"p99": sent.late_p99_ms, "max": sent.late_max_ms},
        "host_acks": counts.chat_acks.load(Ordering::Relaxed),
        "host_errors": counts.chat_errors(),
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "duplicates": duplicates,
        "viewers_with_every_message": complete,
        "delay_ms": {"p50": ms(p50), "p99": ms(p99), "max": ms(max)},
        "drain_after_last_send_s": round1(drain_s),
        "resyncs": reports.iter().map(|r| r.chat_resyncs as u64).sum::<u64>(),
        "viewers_resynced": reports.iter().filter(|r| r.chat_resyncs > 0).count(),
        "host_resyncs": host_resyncs,
        "ended_early": tally(reports.iter().filter_map(|r| r.ended.as_deref())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_index_of_a_benchmark_chat_message_only() {
        let message = r#"{"seq":9,"at":1,"ts":2,"actor":{"participant_id":"host","name":"Host","role":"host"},"nonce":"chat-7","type":"chat_message","id":9,"text":"bench-7","visibility":"everyone"}"#;
        assert_eq!(chat_index(message), Some(7));
        assert_eq!(chat_index(r#"{"type":"ack","nonce":"chat-7"}"#), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }
}
