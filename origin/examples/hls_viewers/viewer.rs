//! One LL-HLS viewer: follows the live edge with blocking playlist reloads and part requests.

use super::*;

/// A blocking playlist answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The part asked for.
    pub(crate) target: Key,
    /// The newest part the answer lists, and its media end.
    pub(crate) newest: Option<(Key, Option<f64>)>,
    pub(crate) headers_at: Instant,
}

/// What one viewer (or saturating connection) saw.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Responses completed in the window, by kind, and their bytes.
    pub(crate) requests: [u64; 6],
    pub(crate) bytes: u64,
    /// Failed requests of the whole run, by "kind:status".
    pub(crate) errors: BTreeMap<String, u64>,
    /// Parts loaded while following the edge: when their last byte came.
    pub(crate) deliveries: Vec<(Key, Instant)>,
    pub(crate) answers: Vec<Answer>,
    /// How long blocking requests started in the window were held, in ms (live); response
    /// times in the window (saturate).
    pub(crate) held_ms: Vec<f32>,
}

pub(crate) struct Viewer<'a> {
    pub(crate) config: &'a Config,
    pub(crate) clock: &'a Clock,
    pub(crate) conn: Conn,
    pub(crate) made: u64,
    pub(crate) log: Log,
}

impl Viewer<'_> {
    pub(crate) fn may_go_on(&self) -> bool {
        Instant::now() < self.clock.window_end && self.made < self.config.max_requests
    }

    pub(crate) async fn get(&mut self, path: &str) -> Option<Reply> {
        let kind = Kind::of(path);
        self.made += 1;
        match self.conn.get(path).await {
            Ok(reply) => {
                if self.clock.in_window(reply.done_at) {
                    self.log.requests[kind as usize] += 1;
                    self.log.bytes += reply.body.len() as u64;
                }
                Some(reply)
            }
            Err(failure) => {
                self.error(kind, failure);
                None
            }
        }
    }

    pub(crate) fn error(&mut self, kind: Kind, failure: Failure) {
        *self.log.errors.entry(format!("{}:{}", kind.label(), failure.label())).or_default() += 1;
    }

    /// Loads a playlist; `None` after counting the failure.
    pub(crate) async fn playlist(&mut self, path: &str) -> Option<(Reply, Playlist)> {
        let reply = self.get(path).await?;
        match reply.text() {
            Ok(text) => Some((reply, Playlist::parse(&text))),
            Err(failure) => {
                self.error(Kind::of(path), failure);
                None
            }
        }
    }

    /// Loads the plain playlist, again every 0.5 s after a failure, while the run lasts.
    pub(crate) async fn reload(&mut self, media: &str) -> Option<Playlist> {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if !self.may_go_on() {
                return None;
            }
            if let Some((_, playlist)) = self.playlist(media).await {
                return Some(playlist);
            }
        }
    }

    pub(crate) async fn follow(&mut self, url: &str) {
        let Some(reply) = self.get(url).await else { return };
        let Ok(text) = reply.text() else {
            self.error(Kind::Playlist, Failure::Body);
            return;
        };
        let Some(variant) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')) else {
            self.error(Kind::Playlist, Failure::Body);
            return;
        };
        let media = join(url, variant);
        let mut playlist = match self.playlist(&media).await {
            Some((_, playlist)) => playlist,
            None => match self.reload(&media).await {
                Some(playlist) => playlist,
                None => return,
            },
        };
        let mut inits = HashSet::new();
        let mut last: Option<Key> = None;
        let mut following = false;
        while self.may_go_on() {
            if let Some(map) = playlist.map.clone()
                && inits.insert(map.clone())
            {
                self.get(&join(&media, &map)).await;
            }
            let fresh: Vec<(Key, String)> = playlist
                .parts
                .iter()
                .filter(|(key, _, _)| last.is_none_or(|last| *key > last))
                .map(|(key, _, uri)| (*key, uri.clone()))
                .collect();
            let skip = if last.is_none() { fresh.len().saturating_sub(self.config.start_parts) } else { 0 };
            for (key, uri) in fresh.into_iter().skip(skip) {
                if !self.may_go_on() {
                    return;
                }
                if let Some(reply) = self.get(&join(&media, &uri)).await
                    && following
                {
                    self.log.deliveries.push((key, reply.done_at));
                }
                last = Some(key);
            }
            let Some(target) = playlist.next_part().filter(|_| !playlist.ended) else { return };
            if !self.may_go_on() {
                return;
            }
            let asked = Instant::now();
            let path = format!("{media}?_HLS_msn={}&_HLS_part={}", target.0, target.1);
            match self.playlist(&path).await {
                Some((reply, next)) => {
                    let newest = next.newest().map(|key| (key, next.media_end(key)));
                    self.log.answers.push(Answer { target, newest, headers_at: reply.headers_at });
                    if self.clock.in_window(asked) {
                        self.log.held_ms.push(reply.headers_at.duration_since(asked).as_secs_f32() * 1000.0);
                    }
                    following = true;
                    playlist = next;
                }
                None => match self.reload(&media).await {
                    Some(next) => playlist = next,
                    None => return,
                },
            }
        }
    }
}
