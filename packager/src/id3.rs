//! ID3v2.4 tags for timed metadata (id3.org "ID3 tag version 2.4.0 - Main Structure": §3.1
//! header, §4 frames, §6.2 synchsafe integers; "Native Frames": §4.2.6 `TXXX`, §4.27 `PRIV`).
//!
//! A tag is the 10-byte header (`ID3`, version 4.0, flags 0, the synchsafe size of what
//! follows) and its frames, each a 10-byte header (id, synchsafe size, flags 0) and a body. No
//! unsynchronisation, extended header, footer or padding: the tag rides in an `emsg` box
//! ([`crate::emsg`]), never in an MP3 stream.
//!
//! Decided here, after how hls.js 1.x (`@svta/cml-id3`, `decodeId3TextFrame`) reads frames:
//! - A townhall event is one `TXXX` frame, text encoding 3 (UTF-8), description
//!   [`EVENT_DESCRIPTION`], value the event's JSON. hls.js turns it into a cue whose `value` is
//!   `{ key: "TXXX", info: "townhall", data: "<json>" }`. The value has no terminator (§4.2:
//!   optional in v2.4; hls.js strips NULs anyway).
//! - hls.js finds the end of a description or PRIV owner by its length in UTF-16 units, not
//!   bytes, so a non-ASCII description would shift the value it reads: descriptions and owners
//!   must be ASCII with no NUL ([`Id3Error::Label`]).
//! - hls.js makes one cue per frame, so an event is one frame: [`Id3Frame::Priv`] exists for
//!   binary payloads, but [`event_tag`] does not add one next to the `TXXX`.

/// The `TXXX` description of townhall events.
pub const EVENT_DESCRIPTION: &str = "townhall";
/// The `PRIV` owner of townhall's binary payloads.
pub const PRIV_OWNER: &str = "https://townhall.dev/event";

/// Largest value a synchsafe 32-bit integer holds (28 bits): the limit of a frame's body and of
/// a tag's frames together.
pub const MAX_SYNCHSAFE: u32 = (1 << 28) - 1;

const HEADER_LEN: usize = 10;
/// Text encoding byte of `TXXX`: UTF-8 (§4 "Native Frames", $03).
const UTF8: u8 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Id3Error {
    /// A frame or the whole tag is larger than a synchsafe size can say.
    #[error("ID3 {what} of {size} bytes is over the 2^28 - 1 bytes a synchsafe size can say")]
    TooLarge { what: &'static str, size: usize },
    /// A `TXXX` description or `PRIV` owner that hls.js would misread.
    #[error("ID3 label {0:?} must be ASCII without NUL")]
    Label(String),
}

/// One frame of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id3Frame<'a> {
    /// User-defined text (§4.2.6): UTF-8, a description, then the value.
    Txxx { description: &'a str, value: &'a str },
    /// Private data (§4.27): an owner identifier (a URL), then binary data.
    Priv { owner: &'a str, data: &'a [u8] },
}

/// `n` as a synchsafe integer (§6.2: 7 bits per byte, the top bit 0); `None` above
/// [`MAX_SYNCHSAFE`].
pub fn synchsafe(n: u32) -> Option<[u8; 4]> {
    (n <= MAX_SYNCHSAFE).then_some([
        (n >> 21) as u8 & 0x7f,
        (n >> 14) as u8 & 0x7f,
        (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ])
}

fn synchsafe_len(what: &'static str, size: usize) -> Result<[u8; 4], Id3Error> {
    u32::try_from(size).ok().and_then(synchsafe).ok_or(Id3Error::TooLarge { what, size })
}

fn check_label(label: &str) -> Result<(), Id3Error> {
    if label.is_ascii() && !label.contains('\0') { Ok(()) } else { Err(Id3Error::Label(label.to_owned())) }
}

/// Writes one frame: header, then body.
fn write_frame(out: &mut Vec<u8>, frame: &Id3Frame) -> Result<(), Id3Error> {
    let (id, parts): (&[u8; 4], [&[u8]; 4]) = match frame {
        Id3Frame::Txxx { description, value } => {
            check_label(description)?;
            (b"TXXX", [&[UTF8], description.as_bytes(), &[0], value.as_bytes()])
        }
        Id3Frame::Priv { owner, data } => {
            check_label(owner)?;
            (b"PRIV", [owner.as_bytes(), &[0], data, &[]])
        }
    };
    let body_len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(id);
    out.extend_from_slice(&synchsafe_len("frame", body_len)?);
    out.extend_from_slice(&[0, 0]); // flags
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(())
}

/// An ID3v2.4 tag holding `frames`.
pub fn write_tag(frames: &[Id3Frame]) -> Result<Vec<u8>, Id3Error> {
    let mut out = Vec::with_capacity(HEADER_LEN + frames.len() * 64);
    out.extend_from_slice(b"ID3");
    out.extend_from_slice(&[4, 0]); // version 2.4.0
    out.push(0); // flags: no unsynchronisation, extended header, experimental, footer
    out.extend_from_slice(&[0; 4]); // size, patched below
    for frame in frames {
        write_frame(&mut out, frame)?;
    }
    let size = synchsafe_len("tag", out.len() - HEADER_LEN)?;
    out[6..HEADER_LEN].copy_from_slice(&size);
    Ok(out)
}

/// The tag of one townhall event: a `TXXX` frame, description [`EVENT_DESCRIPTION`], whose
/// value is the event's JSON.
pub fn event_tag(json: &str) -> Result<Vec<u8>, Id3Error> {
    write_tag(&[Id3Frame::Txxx { description: EVENT_DESCRIPTION, value: json }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchsafe_integers_use_seven_bits_a_byte() {
        assert_eq!(synchsafe(0), Some([0, 0, 0, 0]));
        assert_eq!(synchsafe(127), Some([0, 0, 0, 0x7f]));
        assert_eq!(synchsafe(128), Some([0, 0, 1, 0]));
        assert_eq!(synchsafe(255), Some([0, 0, 1, 0x7f]));
        assert_eq!(synchsafe(16_384), Some([0, 1, 0, 0]));
        assert_eq!(synchsafe(MAX_SYNCHSAFE), Some([0x7f; 4]));
        assert_eq!(synchsafe(MAX_SYNCHSAFE + 1), None);
    }

    #[test]
    fn an_event_tag_is_one_txxx_frame_byte_for_byte() {
        let tag = event_tag(r#"{"a":1}"#).unwrap();
        // Frame body: encoding 3, "townhall", NUL, the JSON: 1 + 8 + 1 + 7 = 17 bytes.
        let mut expected = b"ID3\x04\x00\x00\x00\x00\x00\x1b".to_vec(); // 10 + 17 = 27
        expected.extend_from_slice(b"TXXX\x00\x00\x00\x11\x00\x00");
        expected.extend_from_slice(b"\x03townhall\x00{\"a\":1}");
        assert_eq!(tag, expected);
    }

    #[test]
    fn a_priv_frame_has_its_owner_then_its_data() {
        let tag = write_tag(&[Id3Frame::Priv { owner: PRIV_OWNER, data: &[0, 1, 0xff] }]).unwrap();
        let body_len = PRIV_OWNER.len() + 1 + 3;
        assert_eq!(&tag[10..14], b"PRIV");
        assert_eq!(tag[17], body_len as u8);
        assert_eq!(&tag[20..20 + PRIV_OWNER.len()], PRIV_OWNER.as_bytes());
        assert_eq!(&tag[tag.len() - 4..], &[0, 0, 1, 0xff]);
        assert_eq!(tag.len(), 20 + body_len);
    }

    #[test]
    fn sizes_over_127_bytes_and_16_kib_are_synchsafe() {
        // 200-byte value: body 1 + 8 + 1 + 200 = 210 = 0x01_52 → [0, 0, 1, 0x52].
        let tag = event_tag(&"x".repeat(200)).unwrap();
        assert_eq!(&tag[14..18], &[0, 0, 1, 0x52]);
        // Tag size 220 = [0, 0, 1, 0x5c].
        assert_eq!(&tag[6..10], &[0, 0, 1, 0x5c]);
        // 20,000-byte value: body 20,010 = 1·16384 + 28·128 + 42 → [0, 1, 28, 42].
        let tag = event_tag(&"y".repeat(20_000)).unwrap();
        assert_eq!(&tag[14..18], &[0, 1, 28, 42]);
        assert_eq!(&tag[6..10], &[0, 1, 28, 52]);
        assert_eq!(tag.len(), 20 + 20_010);
        assert!(tag[6..10].iter().chain(&tag[14..18]).all(|b| b & 0x80 == 0));
    }

    #[test]
    fn labels_hls_js_would_misread_are_refused() {
        let frame = Id3Frame::Txxx { description: "événement", value: "{}" };
        assert_eq!(write_tag(&[frame]), Err(Id3Error::Label("événement".into())));
        let frame = Id3Frame::Priv { owner: "a\0b", data: &[] };
        assert!(matches!(write_tag(&[frame]), Err(Id3Error::Label(_))));
        // A UTF-8 value is fine.
        assert!(event_tag(r#"{"text":"ça va ✓"}"#).is_ok());
    }

    #[test]
    fn sizes_over_the_synchsafe_limit_are_refused() {
        // (Checked on the size alone: a 256 MiB frame is too big for a unit test.)
        let size = MAX_SYNCHSAFE as usize + 1;
        assert_eq!(synchsafe_len("frame", size), Err(Id3Error::TooLarge { what: "frame", size }));
        assert_eq!(synchsafe_len("tag", MAX_SYNCHSAFE as usize), Ok([0x7f; 4]));
    }
}
