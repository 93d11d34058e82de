//! Bearer tokens (RFC 6750 §2.1): the admin token, and each room's publish and host tokens.
//! Compared in constant time.

use axum::http::{HeaderMap, header};

use super::problem::Problem;

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Requires a bearer token equal to one of `accepted`; `what` names it in the error.
pub fn require(headers: &HeaderMap, accepted: &[&str], what: &str) -> Result<(), Problem> {
    let Some(token) = bearer(headers) else {
        return Err(Problem::unauthorized(format!("missing bearer token: send \"Authorization: Bearer <{what}>\"")));
    };
    if accepted.iter().any(|a| !a.is_empty() && constant_time_eq(token, a)) {
        Ok(())
    } else {
        Err(Problem::unauthorized(format!("the bearer token is not a valid {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_bearer_tokens() {
        let mut h = HeaderMap::new();
        assert!(require(&h, &["abc"], "admin token").is_err());
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert!(require(&h, &["abc"], "admin token").is_ok());
        assert!(require(&h, &["abd"], "admin token").is_err());
        assert!(require(&h, &[""], "admin token").is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(require(&h, &["abc"], "admin token").is_err());
    }
}
