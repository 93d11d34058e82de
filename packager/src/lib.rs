//! townhall's packager: `Frame`s in, CMAF fMP4 and the LL-HLS playlist model out.
//!
//! Today this crate owns the input contract ([`input`]) that the ingest side produces: one
//! access unit of one track, with 64-bit timestamps and its wall-clock capture time. The CMAF
//! segmenter and playlist model (RFC 8216bis, ISO/IEC 23000-19) consume exactly these types.

pub mod input;

pub use input::{Codec, Frame, TrackInfo, TrackKind};
