//! One HTTP/1.1 keep-alive connection of the load generator and what its answers are made of.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Playlist,
    BlockingPlaylist,
    Part,
    Segment,
    Init,
    Other,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] =
        [Kind::Playlist, Kind::BlockingPlaylist, Kind::Part, Kind::Segment, Kind::Init, Kind::Other];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Playlist => "playlist",
            Kind::BlockingPlaylist => "blocking_playlist",
            Kind::Part => "part",
            Kind::Segment => "segment",
            Kind::Init => "init",
            Kind::Other => "other",
        }
    }

    pub(crate) fn of(path: &str) -> Kind {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.ends_with(".m3u8") {
            if query.split('&').any(|p| p.starts_with("_HLS_msn=")) { Kind::BlockingPlaylist } else { Kind::Playlist }
        } else if name.starts_with("part-") {
            Kind::Part
        } else if name.starts_with("seg-") {
            Kind::Segment
        } else if name.starts_with("init-") {
            Kind::Init
        } else {
            Kind::Other
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    Status(u16),
    Timeout,
    Connect,
    Http,
    Body,
}

impl Failure {
    pub(crate) fn label(self) -> String {
        match self {
            Failure::Status(status) => status.to_string(),
            Failure::Timeout => "timeout".into(),
            Failure::Connect => "connect".into(),
            Failure::Http => "http".into(),
            Failure::Body => "bad_body".into(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) headers_at: Instant,
    pub(crate) done_at: Instant,
    pub(crate) body: Bytes,
    pub(crate) gzipped: bool,
}

impl Reply {
    pub(crate) fn text(&self) -> Result<String, Failure> {
        if self.gzipped {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&self.body[..]).read_to_string(&mut text).map_err(|_| Failure::Body)?;
            Ok(text)
        } else {
            String::from_utf8(self.body.to_vec()).map_err(|_| Failure::Body)
        }
    }
}

/// One HTTP/1.1 keep-alive connection, opened on first use and again after a failure.
pub(crate) struct Conn {
    pub(crate) addr: SocketAddr,
    pub(crate) host: String,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
    /// When the connection's task is dropped at the latest.
    pub(crate) hard_stop: Instant,
    pub(crate) sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Conn {
    pub(crate) fn new(addr: SocketAddr, config: &Config, clock: &Clock) -> Conn {
        Conn {
            addr,
            host: addr.to_string(),
            gzip: config.gzip,
            timeout: config.timeout,
            hard_stop: clock.hard_stop(config),
            sender: None,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Result<Reply, Failure> {
        let result = match tokio::time::timeout(self.timeout, self.exchange(path)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        };
        if matches!(result, Err(Failure::Timeout | Failure::Connect | Failure::Http)) {
            self.sender = None;
        }
        result
    }

    pub(crate) async fn exchange(&mut self, path: &str) -> Result<Reply, Failure> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(self.addr).await.map_err(|_| Failure::Connect)?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|_| Failure::Connect)?;
            let hard_stop = tokio::time::Instant::from_std(self.hard_stop);
            tokio::spawn(async move {
                let _ = tokio::time::timeout_at(hard_stop, connection).await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().ok_or(Failure::Connect)?;
        sender.ready().await.map_err(|_| Failure::Http)?;
        let mut request = Request::get(path).header(HOST, &self.host);
        if self.gzip {
            request = request.header(ACCEPT_ENCODING, "gzip");
        }
        let request = request.body(Empty::new()).map_err(|_| Failure::Http)?;
        let response = sender.send_request(request).await.map_err(|_| Failure::Http)?;
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        let gzipped = response.headers().get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes() == b"gzip");
        let body = response.into_body().collect().await.map_err(|_| Failure::Http)?.to_bytes();
        let done_at = Instant::now();
        if status != 200 {
            return Err(Failure::Status(status));
        }
        Ok(Reply { headers_at, done_at, body, gzipped })
    }
}
