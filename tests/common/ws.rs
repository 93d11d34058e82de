//! A WebSocket client of `/ws/{room}` for the end-to-end tests (tokio-tungstenite, an
//! independent RFC 6455 implementation).

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Server;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a message read ended with.
#[derive(Debug)]
pub enum Read {
    Json(Value),
    Closed(Option<u16>),
}

pub struct WsClient {
    pub socket: Socket,
    /// Messages read while waiting for a command's reply.
    pub pending: VecDeque<Value>,
    pub welcome: Value,
}

/// The URL of a room's WebSocket with a query string.
pub fn ws_url(server: &Server, room: &str, query: &str) -> String {
    format!("ws://{}/ws/{room}{}{query}", server.http, if query.is_empty() { "" } else { "?" })
}

impl WsClient {
    /// Connects and reads the `welcome`.
    pub async fn connect(server: &Server, room: &str, query: &str) -> WsClient {
        let (socket, _) =
            tokio_tungstenite::connect_async(ws_url(server, room, query)).await.expect("websocket connect");
        Self::welcomed(socket).await
    }

    /// Connects and returns the client and its first message (`welcome`, or `waiting` when the
    /// room holds the participant).
    pub async fn join(server: &Server, room: &str, query: &str) -> (WsClient, Value) {
        let (socket, _) =
            tokio_tungstenite::connect_async(ws_url(server, room, query)).await.expect("websocket connect");
        let mut client = WsClient { socket, pending: VecDeque::new(), welcome: Value::Null };
        match client.read(Duration::from_secs(30)).await {
            Read::Json(first) => (client, first),
            Read::Closed(code) => panic!("closed ({code:?}) on joining"),
        }
    }

    pub async fn welcomed(socket: Socket) -> WsClient {
        let mut client = WsClient { socket, pending: VecDeque::new(), welcome: Value::Null };
        match client.read(Duration::from_secs(30)).await {
            Read::Json(welcome) if welcome["type"] == "welcome" => client.welcome = welcome,
            other => panic!("expected a welcome, got {other:?}"),
        }
        client
    }

    /// The attendee identity token of the welcome.
    pub fn token(&self) -> String {
        self.welcome["token"].as_str().expect("an attendee token").to_owned()
    }

    /// The next message from the socket (not from `pending`).
    pub async fn read(&mut self, timeout: Duration) -> Read {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no websocket message within {timeout:?}"));
            match message {
                Some(Ok(Message::Text(text))) => return Read::Json(serde_json::from_str(&text).expect("JSON")),
                Some(Ok(Message::Close(frame))) => return Read::Closed(frame.map(|f| f.code.into())),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Read::Closed(None),
            }
        }
    }

    /// The next message, pending ones first.
    pub async fn next(&mut self, timeout: Duration) -> Read {
        match self.pending.pop_front() {
            Some(value) => Read::Json(value),
            None => self.read(timeout).await,
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("websocket send");
    }

    /// The next message of type `kind`, from the socket; what comes before it is kept in
    /// `pending`.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            match self.read(Duration::from_secs(60)).await {
                Read::Json(message) if message["type"] == kind => return message,
                Read::Json(message) => self.pending.push_back(message),
                Read::Closed(code) => panic!("closed ({code:?}) before {kind}"),
            }
        }
    }

    /// Sends a command and returns its reply (`ack` or `error`); what came meanwhile is kept.
    pub async fn command(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.reply().await
    }

    /// The next `ack` or `error`; what comes before it is kept in `pending`.
    pub async fn reply(&mut self) -> Value {
        loop {
            match self.read(Duration::from_secs(30)).await {
                Read::Json(reply) if reply["type"] == "ack" || reply["type"] == "error" => return reply,
                Read::Json(other) => self.pending.push_back(other),
                Read::Closed(code) => panic!("closed ({code:?}) while waiting for a reply"),
            }
        }
    }
}
