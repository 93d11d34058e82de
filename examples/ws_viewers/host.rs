//! The host of the load generator, on its own thread and runtime: creates, opens and closes
//! the poll and sends the chat, reconnecting when told to resync.

use super::*;

pub(crate) enum HostCommand {
    /// Creates a poll and opens it; answers the poll's id.
    OpenPoll(oneshot::Sender<Result<String, String>>),
    /// Closes it; answers its `poll_closed` event.
    ClosePoll(String, oneshot::Sender<Result<Value, String>>),
    /// Sends the chat; answers when the last message is sent.
    Chat(oneshot::Sender<ChatSent>),
}

#[derive(Debug, Default)]
pub(crate) struct ChatSent {
    pub(crate) sent: usize,
    /// How late each send was against its schedule: p99 and max, ms.
    pub(crate) late_p99_ms: f64,
    pub(crate) late_max_ms: f64,
    pub(crate) seconds: f64,
}

/// What the host's reader counts.
#[derive(Debug, Default)]
pub(crate) struct HostCounts {
    pub(crate) chat_acks: AtomicU64,
    pub(crate) chat_errors: Mutex<BTreeMap<String, u64>>,
    pub(crate) votes_seen: AtomicU64,
    pub(crate) resync: AtomicU64,
}

impl HostCounts {
    pub(crate) fn chat_errors(&self) -> BTreeMap<String, u64> {
        self.chat_errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The host's sending half: replaced when the host reconnects after a `resync`.
pub(crate) type HostSink = Arc<tokio::sync::Mutex<SplitSink<Socket, Message>>>;

pub(crate) fn host_query(config: &Config, since: Option<u64>) -> String {
    let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
    format!("token={}&name=Host{since}", config.host_token)
}

/// Starts the host on its own thread; its commands go through the returned sender.
pub(crate) fn start_host(
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
pub(crate) async fn host_reader(
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
pub(crate) fn host_message(message: Value, counts: &HostCounts, replies: &mpsc::UnboundedSender<Value>) -> Option<u64> {
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
pub(crate) async fn command(
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
pub(crate) async fn host_send(sink: &HostSink, command: &Value, timeout: Duration) -> Result<(), String> {
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

pub(crate) async fn open_poll(
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

pub(crate) async fn close_poll(
    sink: &HostSink,
    replies: &mut mpsc::UnboundedReceiver<Value>,
    poll: &str,
    config: &Config,
) -> Result<Value, String> {
    let close = json!({"type": "poll_close", "poll": poll, "nonce": "close"});
    command(sink, replies, close, config.timeout, |m| m["type"] == "poll_closed" && m["poll"] == poll).await
}

pub(crate) async fn send_chat(sink: &HostSink, shared: &Shared, config: &Config) -> ChatSent {
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
