//! One viewer of the load generator: connects, reads everything, votes, resyncs like a client.

use super::*;

/// Classifies an error message for the counts: its kind without addresses or numbers.
pub(crate) fn error_kind(message: &str) -> String {
    message.split(':').take(2).collect::<Vec<_>>().join(":").trim().chars().take(60).collect()
}

/// The index of a chat message of this benchmark, read without parsing the JSON (the viewers
/// read up to a million of them per second; a full parse would cost more than the rest).
pub(crate) fn chat_index(text: &str) -> Option<usize> {
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
pub(crate) struct ViewerReport {
    pub(crate) connect_error: Option<String>,
    pub(crate) connect_us: Option<u64>,
    pub(crate) poll_opened_delay_us: Option<u64>,
    pub(crate) vote_ack_us: Option<u64>,
    pub(crate) vote_acked_at_us: Option<u64>,
    pub(crate) vote_error: Option<String>,
    pub(crate) poll_closed: Option<Value>,
    pub(crate) poll_results: u32,
    /// Per chat message: the delivery delay in µs (`u32::MAX`: not received).
    pub(crate) chat_delays: Vec<u32>,
    pub(crate) chat_duplicates: u32,
    pub(crate) resyncs: u32,
    /// Of them, during the chat scenario.
    pub(crate) chat_resyncs: u32,
    /// Why the connection ended before the stop.
    pub(crate) ended: Option<String>,
}

pub(crate) struct Viewer {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) vote_offset: Duration,
    pub(crate) report: ViewerReport,
    /// The open poll to vote in, once `poll_opened` came.
    pub(crate) poll: Option<String>,
    pub(crate) vote_sent_us: Option<u64>,
}

/// What a viewer does after a message.
pub(crate) enum Flow {
    Go,
    /// Told to resync from this seq: the server closes the connection next.
    Resync(u64),
}

impl Viewer {
    pub(crate) async fn run(
        mut self,
        config: Arc<Config>,
        start: Instant,
        mut stop: watch::Receiver<bool>,
    ) -> ViewerReport {
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
