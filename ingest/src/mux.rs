//! One UDP port for every WebRTC session (the "UDP mux"), so a firewall needs one rule.
//!
//! RFC 7983 §7 tells STUN, DTLS and SRTP apart by their first byte; RFC 8445 §7.2.2 names the
//! session in each connectivity check (`USERNAME = <our ufrag>:<their ufrag>`). The mux reads
//! our ufrag from a peer's first Binding request and from then on routes every datagram from
//! that address to the same session. Peers that send no candidates (ffmpeg's WHIP muxer) are
//! found this way too: their address is learned from their checks (peer-reflexive, §7.3.1.3).
//!
//! Sessions get datagrams through a bounded queue; a full queue drops the datagram (counted):
//! one stuck session never holds up the socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::stun;

/// One received datagram, with its source and arrival time.
#[derive(Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    pub at: Instant,
    pub data: BytesMut,
}

#[derive(Debug, Default)]
struct Routes {
    by_ufrag: HashMap<String, (String, mpsc::Sender<Datagram>)>,
    by_addr: HashMap<SocketAddr, (String, mpsc::Sender<Datagram>)>,
}

/// The routing table from ufrag and source address to session.
#[derive(Debug, Default)]
pub struct Router {
    routes: Mutex<Routes>,
}

impl Router {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes Binding requests naming `ufrag` to `session`.
    pub fn add_ufrag(&self, ufrag: &str, session: &str, tx: mpsc::Sender<Datagram>) {
        self.routes().by_ufrag.insert(ufrag.to_owned(), (session.to_owned(), tx));
    }

    /// Forgets everything that routes to `session`.
    pub fn remove_session(&self, session: &str) {
        let mut routes = self.routes();
        routes.by_ufrag.retain(|_, (s, _)| s != session);
        routes.by_addr.retain(|_, (s, _)| s != session);
    }

    /// Forgets one ufrag of `session` (after an ICE restart).
    pub fn remove_ufrag(&self, ufrag: &str) {
        self.routes().by_ufrag.remove(ufrag);
    }

    /// Where a datagram goes: by source address, else by the ufrag of a Binding request (and
    /// then the address is learned).
    pub fn route(&self, from: SocketAddr, data: &[u8]) -> Option<mpsc::Sender<Datagram>> {
        let mut routes = self.routes();
        if let Some(ufrag) = stun::binding_request_local_ufrag(data) {
            // A check names its session explicitly: it wins over the address (a peer may reuse
            // an address for a new session, e.g. after reconnecting).
            let entry = routes.by_ufrag.get(ufrag).cloned()?;
            routes.by_addr.insert(from, entry.clone());
            return Some(entry.1);
        }
        routes.by_addr.get(&from).map(|(_, tx)| tx.clone())
    }

    /// Number of sessions with at least one route (for tests and metrics).
    pub fn sessions(&self) -> usize {
        let routes = self.routes();
        let mut ids: Vec<&String> = routes.by_ufrag.values().map(|(s, _)| s).collect();
        ids.extend(routes.by_addr.values().map(|(s, _)| s));
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

/// Receives on the shared socket and hands datagrams to sessions until the socket fails.
pub async fn receive_loop(socket: Arc<UdpSocket>, router: Arc<Router>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                // ICMP port unreachable surfaces as ECONNREFUSED on some systems: not fatal.
                tracing::debug!(%err, "udp receive error");
                continue;
            }
        };
        Metrics::inc(&metrics.udp_received_packets_total);
        Metrics::add(&metrics.udp_received_bytes_total, n as u64);
        let data = &buf[..n];
        let Some(tx) = router.route(from, data) else {
            Metrics::inc(&metrics.udp_unroutable_packets_total);
            continue;
        };
        let datagram = Datagram { from, at: Instant::now(), data: BytesMut::from(data) };
        if tx.try_send(datagram).is_err() {
            Metrics::inc(&metrics.session_queue_dropped_packets_total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ufrag: &str) -> Vec<u8> {
        let username = format!("{ufrag}:peer");
        let mut msg = vec![0x00, 0x01];
        let padded = (username.len() + 3) & !3;
        msg.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        msg.extend_from_slice(&[1; 12]);
        msg.extend_from_slice(&[0x00, 0x06]);
        msg.extend_from_slice(&(username.len() as u16).to_be_bytes());
        msg.extend_from_slice(username.as_bytes());
        msg.resize(20 + 4 + padded, 0);
        msg
    }

    #[test]
    fn learns_addresses_from_checks_and_forgets_sessions() {
        let router = Router::default();
        let (tx, mut rx) = mpsc::channel(4);
        router.add_ufrag("abcd", "s1", tx);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(router.route(peer, &[0x80, 0x60]).is_none(), "unknown address, not a check");
        assert!(router.route(peer, &check("zzzz")).is_none(), "unknown ufrag");
        router
            .route(peer, &check("abcd"))
            .unwrap()
            .try_send(Datagram { from: peer, at: Instant::now(), data: BytesMut::new() })
            .unwrap();
        assert!(rx.try_recv().is_ok());
        assert!(router.route(peer, &[0x80, 0x60]).is_some(), "address learned");
        assert_eq!(router.sessions(), 1);
        router.remove_session("s1");
        assert!(router.route(peer, &[0x80, 0x60]).is_none());
        assert_eq!(router.sessions(), 0);
    }
}
