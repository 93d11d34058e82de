//! Just enough STUN (RFC 8489 §5, §14.3) to route a datagram to its session on a shared port.
//!
//! An ICE connectivity check (RFC 8445 §7.2.2) carries `USERNAME = "<our ufrag>:<their ufrag>"`.
//! The UDP mux reads our ufrag from the first check a peer sends and learns the peer's address
//! from it; every later datagram from that address (DTLS, SRTP, STUN) goes to the same session.
//! Authentication is left to the session's ICE agent, which checks MESSAGE-INTEGRITY.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;
const BINDING_REQUEST: u16 = 0x0001;

/// Whether a datagram looks like STUN (RFC 7983 §7: first byte 0..=3, plus the magic cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local (our) ufrag named by a STUN Binding request, if the datagram is one.
pub fn binding_request_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let message_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    if message_type != BINDING_REQUEST {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(HEADER_LEN..HEADER_LEN + length)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let attr_type = u16::from_be_bytes([rest[0], rest[1]]);
        let attr_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + attr_len)?;
        if attr_type == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = (attr_len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, as Chromium sends.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn reads_our_ufrag_from_a_binding_request() {
        let msg = binding_request(b"srvUfrag:cli1");
        assert!(is_stun(&msg));
        assert_eq!(binding_request_local_ufrag(&msg), Some("srvUfrag"));
    }

    #[test]
    fn ignores_other_packets_and_survives_garbage() {
        assert_eq!(binding_request_local_ufrag(&[0x80, 0x60, 0, 1]), None);
        let mut msg = binding_request(b"a:b");
        msg[0] = 0x01; // 0x0101: Binding success response
        assert_eq!(binding_request_local_ufrag(&msg), None);
        let mut truncated = binding_request(b"abc:def");
        truncated.truncate(30);
        assert_eq!(binding_request_local_ufrag(&truncated), None);
        let mut lying = binding_request(b"abc:def");
        lying[23] = 0xff; // PRIORITY claims 255 bytes
        assert_eq!(binding_request_local_ufrag(&lying), None);
        assert_eq!(binding_request_local_ufrag(&binding_request(b":x")), None);
        assert_eq!(binding_request_local_ufrag(&binding_request(&[0xff, 0xfe])), None);
    }
}
