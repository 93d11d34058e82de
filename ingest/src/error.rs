//! The ingest crate's one error type.

/// Everything that can go wrong between an SDP offer and a forwarded packet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The offer is not valid SDP, or is missing something WHIP/WHEP require.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The offer has no codec this server can receive or send.
    #[error("no usable codec in the offer: {0}")]
    NoUsableCodec(String),
    /// The offer's directions do not fit the endpoint (a WHIP offer that sends nothing, ...).
    #[error("unacceptable offer: {0}")]
    BadOffer(String),
    /// A trickle/ICE-restart PATCH body that is not a valid SDP fragment (RFC 8840).
    #[error("malformed SDP fragment: {0}")]
    MalformedFragment(String),
    /// A well-formed fragment the ICE agent cannot apply (RFC 9725 §4.3: 422).
    #[error("the SDP fragment cannot be applied: {0}")]
    UnusableFragment(String),
    /// The room's stage already has as many presenters as configured.
    #[error("the stage is full: {max} presenters publish already")]
    StageFull { max: usize },
    /// No such presenter publishes on this stage.
    #[error("no presenter {0:?} on this stage")]
    UnknownPresenter(String),
    /// An ICE restart was asked with `If-Match: *` instead of the session's ETag.
    #[error("an ICE restart needs If-Match with the session's ETag, not \"*\"")]
    RestartNeedsEtag,
    /// The session has ended.
    #[error("the session has ended")]
    SessionGone,
    /// The WebRTC core refused something.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// Socket errors.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rtc::shared::error::Error> for Error {
    fn from(err: rtc::shared::error::Error) -> Self {
        Error::WebRtc(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
