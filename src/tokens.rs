//! Signed access tokens: JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (RFC 7518 §3.2,
//! `HS256`) under the server's key. A token names its room, the participant's role, id and
//! display name, when it was issued and when it expires, and a unique id (`jti`) by which it
//! can be revoked.
//!
//! Decided here (RFC 8725, JWT best current practices): the header must be exactly HS256 (no
//! `none`, no other algorithm, no `kid` lookups); `iss` must be `townhall`; `exp` is required
//! and checked against the caller's clock with no leeway; the signature is compared in
//! constant time (ring). Sans-IO: the time is an argument.

use ring::hmac;
use serde::{Deserialize, Serialize};
use townhall_interaction::Role;

/// The issuer every token names.
pub const ISSUER: &str = "townhall";
/// The only header this server writes and accepts: `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The room it is valid in.
    pub room: String,
    pub role: Role,
    /// The participant id.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Unique id, for revocation.
    pub jti: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT (three base64url parts separated by dots)")]
    Malformed,
    #[error("the token's header is not HS256")]
    Algorithm,
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the token expired")]
    Expired,
    #[error("the token was not issued by townhall")]
    Issuer,
}

/// The server's signing key.
pub struct TokenKey {
    key: hmac::Key,
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The compact serialization of `claims` (RFC 7515 §7.1).
    pub fn sign(&self, claims: &Claims) -> String {
        // Plain strings and numbers: serializing cannot fail.
        let payload = base64url(serde_json::to_string(claims).unwrap_or_default().as_bytes());
        let signing_input = format!("{HEADER}.{payload}");
        let signature = base64url(hmac::sign(&self.key, signing_input.as_bytes()).as_ref());
        format!("{signing_input}.{signature}")
    }

    /// The claims of a token this key signed, if it has not expired at `now_s`.
    pub fn verify(&self, token: &str, now_s: u64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if header != HEADER {
            let decoded = base64url_decode(header).ok_or(TokenError::Malformed)?;
            let _: serde_json::Value = serde_json::from_slice(&decoded).map_err(|_| TokenError::Malformed)?;
            return Err(TokenError::Algorithm);
        }
        let signature = base64url_decode(signature).ok_or(TokenError::Malformed)?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        hmac::verify(&self.key, signing_input.as_bytes(), &signature).map_err(|_| TokenError::Signature)?;
        let payload = base64url_decode(payload).ok_or(TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Issuer);
        }
        if now_s >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url without padding; `None` for any other character or a bad length.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut n = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        n = n << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((n >> bits) as u8);
        }
    }
    // The unused low bits of the last character must be zero (canonical encoding).
    (n & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            room: "r1".into(),
            role: Role::Presenter,
            sub: "p-ada".into(),
            name: "Ada".into(),
            iat: 1_000,
            exp,
            jti: "j1".into(),
        }
    }

    #[test]
    fn base64url_round_trips_and_refuses_what_is_not_canonical() {
        for (input, expected) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(base64url(input.as_bytes()), expected);
            assert_eq!(base64url_decode(expected).unwrap(), input.as_bytes());
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(HEADER, base64url(br#"{"alg":"HS256","typ":"JWT"}"#));
        for bad in ["Zh", "Z", "Zm9v=", "Zm+v", "Zm/v"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = TokenKey::new(b"server secret, thirty-two bytes!");
        let token = key.sign(&claims(2_000));
        assert_eq!(key.verify(&token, 1_999), Ok(claims(2_000)));
        assert_eq!(key.verify(&token, 2_000), Err(TokenError::Expired));
        assert_eq!(TokenKey::new(b"another key").verify(&token, 1_500), Err(TokenError::Signature));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let key = TokenKey::new(b"k");
        let token = key.sign(&claims(2_000));
        let (signing_input, _) = token.rsplit_once('.').unwrap();
        // Another payload under the same signature.
        let mut forged = claims(2_000);
        forged.role = Role::Host;
        let forged_payload = base64url(serde_json::to_string(&forged).unwrap().as_bytes());
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(key.verify(&format!("{HEADER}.{forged_payload}.{signature}"), 1_500), Err(TokenError::Signature));
        // alg: none, and another algorithm.
        let none = base64url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = signing_input.split('.').nth(1).unwrap();
        assert_eq!(key.verify(&format!("{none}.{payload}."), 1_500), Err(TokenError::Algorithm));
        let rs256 = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(key.verify(&format!("{rs256}.{payload}.{signature}"), 1_500), Err(TokenError::Algorithm));
        // Not a JWT at all.
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**", "host-token-of-a-room"] {
            assert_eq!(key.verify(bad, 1_500), Err(TokenError::Malformed), "{bad}");
        }
        // Another issuer, properly signed.
        let mut other = claims(2_000);
        other.iss = "someone-else".into();
        assert_eq!(key.verify(&key.sign(&other), 1_500), Err(TokenError::Issuer));
    }
}
