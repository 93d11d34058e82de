//! townhall's packager: `Frame`s in, CMAF fMP4 and the LL-HLS playlist model out.
//!
//! Everything here is sans-IO: no clock reads, no sockets, no async. [`input`] is the contract
//! the ingest side produces (one access unit of one track, 64-bit timestamps, capture time);
//! [`segmenter`] cuts time-ordered samples into LL-HLS parts and segments (RFC 8216bis §4.4.4.9,
//! §4.4.4.6) written by [`fmp4`], with timed metadata as ID3 ([`id3`]) in `emsg` boxes ([`emsg`]);
//! [`playlist`] is the media playlist model, rendered to text.

pub mod aac;
pub mod emsg;
pub mod fmp4;
pub mod h264_black;
pub mod id3;
pub mod input;
pub mod mp4file;
pub mod part_fit;
pub mod playlist;
pub mod pps;
pub mod segmenter;
pub mod sps;
pub mod timeline;

pub use input::{Codec, Frame, TrackInfo, TrackKind};
