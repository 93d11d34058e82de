//! One progressive MP4 file from CMAF fragments, without re-encoding: what a recording
//! downloads as (ISO/IEC 14496-12 §8.6 sample tables, §8.6.6 edit lists, §8.7.5 chunk offsets;
//! the fragments are read per §8.8: `moof`/`traf`/`tfhd`/`tfdt`/`trun`).
//!
//! Sans-IO: the caller reads the init sections and the `moof` boxes of each segment file and
//! hands them in; [`Mp4Builder::finish`] returns the file's head (`ftyp` + `moov` + the `mdat`
//! header) and the byte ranges of the segment files that follow it, in order, so a 2 GB file
//! is streamed, never held in memory.
//!
//! Decided here:
//! - Each fragment's samples of a track are one chunk; a fragment's `mdat` payload is copied
//!   whole, so its chunks land in the file as they were.
//! - Sample durations follow the fragments' decode times: the last sample before a gap of up
//!   to [`MAX_BRIDGED_GAP_S`] is lengthened over it (the picture holds), a longer jump (a new
//!   presenter's epoch) is closed up.
//! - The presentation starts at `start_s` on the program's clock: each track gets an edit list
//!   that skips into its media (the file starts at the keyframe before) or waits for it with
//!   an empty edit, so audio and video stay in sync as they were in the program.
//! - Several init sections (a presenter switch with new parameters) become several sample
//!   entries of one track, chosen per chunk by `stsc`.
//! - Movie timescale: 1000 (milliseconds).

use crate::fmp4::{TrakHeader, u32be, u64be, write_box, write_full_box, write_mvhd, write_trak};

/// Gaps in a track's decode times up to this long are bridged; longer jumps are closed up.
pub const MAX_BRIDGED_GAP_S: f64 = 10.0;

const MOVIE_TIMESCALE: u64 = 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mp4Error {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("no samples in the range")]
    Empty,
}

fn malformed(what: &'static str, detail: impl Into<String>) -> Mp4Error {
    Mp4Error::Malformed { what, detail: detail.into() }
}

/// A track of an init section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTrack {
    pub track_id: u32,
    pub timescale: u32,
    pub is_video: bool,
    pub width: u16,
    pub height: u16,
    /// The sample entry box (`avc1`, `mp4a`, ...) as found in `stsd`.
    pub sample_entry: Vec<u8>,
}

/// One sample of a fragment's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSample {
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    pub composition_offset: i32,
}

/// One track's samples in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    pub base_decode_time: u64,
    /// Where its first sample's data is, from the start of the `moof`.
    pub data_offset: u64,
    pub samples: Vec<RunSample>,
}

/// A fragment: its runs, and where its `mdat` payload lies in its source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub runs: Vec<TrackRun>,
    /// Offset of the `moof` in its source.
    pub moof_offset: u64,
    pub mdat_payload_offset: u64,
    pub mdat_payload_len: u64,
}

/// Boxes in `data`: (type, body offset, body length, box offset). Stops with an error at a box
/// that does not fit.
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], usize, usize, usize), Mp4Error>> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= data.len() {
            return None;
        }
        let header = data.get(at..at + 8).ok_or_else(|| malformed("box", "truncated header"));
        let result = header.and_then(|h| {
            let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let kind = [h[4], h[5], h[6], h[7]];
            let (header_len, size) = match size32 {
                0 => (8, data.len() - at),
                1 => {
                    let wide = data.get(at + 8..at + 16).ok_or_else(|| malformed("box", "truncated size"))?;
                    (16, u64::from_be_bytes(wide.try_into().expect("8 bytes")) as usize)
                }
                n => (8, n),
            };
            if size < header_len || at.checked_add(size).is_none_or(|end| end > data.len()) {
                return Err(malformed(
                    "box",
                    format!("{} of {size} bytes does not fit", String::from_utf8_lossy(&kind)),
                ));
            }
            Ok((kind, at + header_len, size - header_len, size))
        });
        match result {
            Ok((kind, body, len, size)) => {
                let start = at;
                at += size;
                Some(Ok((kind, body, len, start)))
            }
            Err(err) => {
                at = data.len();
                Some(Err(err))
            }
        }
    })
}

/// The body of the first child box of `kind`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Mp4Error> {
    for entry in boxes(data) {
        let (k, body, len, _) = entry?;
        if &k == kind {
            return Ok(Some(&data[body..body + len]));
        }
    }
    Ok(None)
}

fn need<'a>(data: &'a [u8], kind: &'static [u8; 4], what: &'static str) -> Result<&'a [u8], Mp4Error> {
    child(data, kind)?.ok_or_else(|| malformed(what, format!("no {}", String::from_utf8_lossy(kind))))
}

fn be_u32(data: &[u8], at: usize, what: &'static str) -> Result<u32, Mp4Error> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| malformed(what, "truncated"))
}

fn be_u64(data: &[u8], at: usize, what: &'static str) -> Result<u64, Mp4Error> {
    data.get(at..at + 8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| malformed(what, "truncated"))
}

/// Reads the tracks of an init section (`ftyp` + `moov`).
pub fn parse_init(data: &[u8]) -> Result<Vec<InitTrack>, Mp4Error> {
    let moov = need(data, b"moov", "init section")?;
    let mut tracks = Vec::new();
    for entry in boxes(moov) {
        let (kind, body, len, _) = entry?;
        if &kind != b"trak" {
            continue;
        }
        let trak = &moov[body..body + len];
        let tkhd = need(trak, b"tkhd", "trak")?;
        let wide = tkhd.first() == Some(&1);
        let track_id = be_u32(tkhd, if wide { 20 } else { 12 }, "tkhd")?;
        let size_at = tkhd.len().checked_sub(8).ok_or_else(|| malformed("tkhd", "too short"))?;
        let width = (be_u32(tkhd, size_at, "tkhd")? >> 16) as u16;
        let height = (be_u32(tkhd, size_at + 4, "tkhd")? >> 16) as u16;
        let mdia = need(trak, b"mdia", "trak")?;
        let mdhd = need(mdia, b"mdhd", "mdia")?;
        let timescale = be_u32(mdhd, if mdhd.first() == Some(&1) { 20 } else { 12 }, "mdhd")?;
        let hdlr = need(mdia, b"hdlr", "mdia")?;
        let is_video = hdlr.get(8..12) == Some(b"vide");
        let stbl = need(need(mdia, b"minf", "mdia")?, b"stbl", "minf")?;
        let stsd = need(stbl, b"stsd", "stbl")?;
        // stsd: version/flags, entry_count, then the entries: keep the first.
        let entries = stsd.get(8..).ok_or_else(|| malformed("stsd", "too short"))?;
        let (_, body, len, start) = boxes(entries).next().ok_or_else(|| malformed("stsd", "no sample entry"))??;
        let sample_entry = entries[start..body + len].to_vec();
        if timescale == 0 {
            return Err(malformed("mdhd", "timescale 0"));
        }
        tracks.push(InitTrack { track_id, timescale, is_video, width, height, sample_entry });
    }
    if tracks.is_empty() {
        return Err(malformed("init section", "no track"));
    }
    Ok(tracks)
}

/// Reads the fragments (`moof` + `mdat` pairs) of a segment file.
pub fn parse_segment(data: &[u8]) -> Result<Vec<Fragment>, Mp4Error> {
    let mut fragments = Vec::new();
    let mut pending: Option<(u64, Vec<TrackRun>)> = None;
    for entry in boxes(data) {
        let (kind, body, len, start) = entry?;
        match &kind {
            b"moof" => pending = Some((start as u64, parse_moof(&data[body..body + len])?)),
            b"mdat" => {
                let (moof_offset, runs) = pending.take().ok_or_else(|| malformed("segment", "mdat without moof"))?;
                let payload_offset = body as u64;
                let payload_len = len as u64;
                for run in &runs {
                    let start = moof_offset + run.data_offset;
                    let run_len: u64 = run.samples.iter().map(|s| u64::from(s.size)).sum();
                    if start < payload_offset || start + run_len > payload_offset + payload_len {
                        return Err(malformed("trun", "sample data outside the mdat"));
                    }
                }
                fragments.push(Fragment {
                    runs,
                    moof_offset,
                    mdat_payload_offset: payload_offset,
                    mdat_payload_len: payload_len,
                });
            }
            _ => {}
        }
    }
    Ok(fragments)
}

fn parse_moof(moof: &[u8]) -> Result<Vec<TrackRun>, Mp4Error> {
    let mut runs = Vec::new();
    for entry in boxes(moof) {
        let (kind, body, len, _) = entry?;
        if &kind != b"traf" {
            continue;
        }
        let traf = &moof[body..body + len];
        let tfhd = need(traf, b"tfhd", "traf")?;
        let tfhd_flags = be_u32(tfhd, 0, "tfhd")? & 0x00ff_ffff;
        let track_id = be_u32(tfhd, 4, "tfhd")?;
        if tfhd_flags & 0x1 != 0 {
            return Err(malformed("tfhd", "base-data-offset is not supported"));
        }
        let mut at = 8;
        if tfhd_flags & 0x2 != 0 {
            at += 4; // sample_description_index
        }
        let mut default_duration = 0;
        let mut default_size = 0;
        let mut default_flags = 0;
        if tfhd_flags & 0x8 != 0 {
            default_duration = be_u32(tfhd, at, "tfhd")?;
            at += 4;
        }
        if tfhd_flags & 0x10 != 0 {
            default_size = be_u32(tfhd, at, "tfhd")?;
            at += 4;
        }
        if tfhd_flags & 0x20 != 0 {
            default_flags = be_u32(tfhd, at, "tfhd")?;
        }
        let tfdt = need(traf, b"tfdt", "traf")?;
        let base_decode_time =
            if tfdt.first() == Some(&1) { be_u64(tfdt, 4, "tfdt")? } else { u64::from(be_u32(tfdt, 4, "tfdt")?) };
        let trun = need(traf, b"trun", "traf")?;
        let flags = be_u32(trun, 0, "trun")? & 0x00ff_ffff;
        let count = be_u32(trun, 4, "trun")? as usize;
        let mut at = 8;
        let mut data_offset = 0u64;
        if flags & 0x1 != 0 {
            data_offset = u64::from(be_u32(trun, at, "trun")?);
            at += 4;
        }
        let mut first_flags = None;
        if flags & 0x4 != 0 {
            first_flags = Some(be_u32(trun, at, "trun")?);
            at += 4;
        }
        let per_sample = 4 * [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count();
        if count.saturating_mul(per_sample) > trun.len().saturating_sub(at) {
            return Err(malformed("trun", format!("{count} samples do not fit")));
        }
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            let mut field = |bit: u32, default: u32| -> Result<u32, Mp4Error> {
                if flags & bit == 0 {
                    return Ok(default);
                }
                let v = be_u32(trun, at, "trun")?;
                at += 4;
                Ok(v)
            };
            let duration = field(0x100, default_duration)?;
            let size = field(0x200, default_size)?;
            let sample_flags = field(0x400, if i == 0 { first_flags.unwrap_or(default_flags) } else { default_flags })?;
            let composition_offset = field(0x800, 0)? as i32;
            // sample_is_non_sync_sample (bit 16)
            let sync = sample_flags & 0x0001_0000 == 0;
            samples.push(RunSample { duration, size, sync, composition_offset });
        }
        runs.push(TrackRun { track_id, base_decode_time, data_offset, samples });
    }
    Ok(runs)
}

/// Where the file's bytes come from after its head: `len` bytes at `offset` of source
/// `source` (the index the caller gave with the fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    pub source: usize,
    pub offset: u64,
    pub len: u64,
}

/// The planned file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp4Plan {
    /// `ftyp` + `moov` + the `mdat` header.
    pub head: Vec<u8>,
    /// What follows the head, in order.
    pub copies: Vec<Copy>,
    pub total_len: u64,
    /// The presentation's duration in seconds.
    pub duration_s: f64,
}

#[derive(Debug, Default)]
struct TrackBuild {
    info: Option<InitTrack>,
    /// Sample entries, in `stsd` order.
    entries: Vec<Vec<u8>>,
    samples: Vec<RunSample>,
    /// Decode time of the first sample, in the track's timescale.
    first_dts: Option<u64>,
    /// Decode time where the next sample is expected.
    next_dts: u64,
    /// (first sample index, sample count, sample description index, offset in the mdat).
    chunks: Vec<(usize, u32, u32, u64)>,
}

/// Collects fragments, then plans the file.
#[derive(Debug, Default)]
pub struct Mp4Builder {
    tracks: Vec<TrackBuild>,
    copies: Vec<Copy>,
    mdat_len: u64,
}

impl Mp4Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fragment of source `source`, described by the init section `init`.
    pub fn add_fragment(&mut self, source: usize, init: &[InitTrack], fragment: &Fragment) {
        let payload_start = self.mdat_len;
        for run in &fragment.runs {
            let Some(info) = init.iter().find(|t| t.track_id == run.track_id) else { continue };
            if run.samples.is_empty() {
                continue;
            }
            let index =
                match self.tracks.iter().position(|t| t.info.as_ref().is_some_and(|i| i.track_id == run.track_id)) {
                    Some(index) => index,
                    None => {
                        self.tracks.push(TrackBuild { info: Some(info.clone()), ..TrackBuild::default() });
                        self.tracks.len() - 1
                    }
                };
            let track = &mut self.tracks[index];
            let entry = match track.entries.iter().position(|e| *e == info.sample_entry) {
                Some(i) => i,
                None => {
                    track.entries.push(info.sample_entry.clone());
                    track.entries.len() - 1
                }
            };
            // Bridge a gap (or close a jump) before this run.
            if track.first_dts.is_none() {
                track.first_dts = Some(run.base_decode_time);
            } else if let Some(last) = track.samples.last_mut() {
                let gap = run.base_decode_time as i128 - track.next_dts as i128;
                let limit = (MAX_BRIDGED_GAP_S * f64::from(info.timescale)) as i128;
                if gap > 0 && gap <= limit {
                    last.duration = last.duration.saturating_add(gap as u32);
                }
            }
            let offset = payload_start + (fragment.moof_offset + run.data_offset - fragment.mdat_payload_offset);
            track.chunks.push((track.samples.len(), run.samples.len() as u32, entry as u32 + 1, offset));
            track.samples.extend_from_slice(&run.samples);
            track.next_dts = run.base_decode_time + run.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
        }
        self.copies.push(Copy { source, offset: fragment.mdat_payload_offset, len: fragment.mdat_payload_len });
        self.mdat_len += fragment.mdat_payload_len;
    }

    /// Plans the file, presenting from `start_s` (seconds on the tracks' decode clock; `None`:
    /// from the first video sample).
    pub fn finish(self, start_s: Option<f64>) -> Result<Mp4Plan, Mp4Error> {
        let tracks: Vec<&TrackBuild> = self.tracks.iter().filter(|t| !t.samples.is_empty()).collect();
        let video = tracks.iter().find(|t| t.info.as_ref().is_some_and(|i| i.is_video)).or(tracks.first());
        let Some(video) = video else { return Err(Mp4Error::Empty) };
        let seconds = |t: &TrackBuild, ticks: u64| ticks as f64 / f64::from(t.info.as_ref().map_or(1, |i| i.timescale));
        let start_s = start_s.unwrap_or_else(|| seconds(video, video.first_dts.unwrap_or(0)));
        // The presentation ends where the shortest track ends.
        let end_s = tracks
            .iter()
            .map(|t| {
                seconds(t, t.first_dts.unwrap_or(0) + t.samples.iter().map(|s| u64::from(s.duration)).sum::<u64>())
            })
            .fold(f64::INFINITY, f64::min);
        let duration_s = (end_s - start_s).max(0.0);
        let movie_duration = (duration_s * MOVIE_TIMESCALE as f64).round() as u64;

        // The head's size does not depend on the mdat's offset (co64 is fixed-size): write it
        // once to measure, then again with the real offsets.
        let head_for = |mdat_data_start: u64| {
            let mut head = Vec::new();
            write_box(&mut head, b"ftyp", |out| {
                out.extend_from_slice(b"isom");
                u32be(out, 0x200);
                for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
                    out.extend_from_slice(brand);
                }
            });
            write_box(&mut head, b"moov", |out| {
                let next_id = tracks.iter().filter_map(|t| t.info.as_ref()).map(|i| i.track_id).max().unwrap_or(0) + 1;
                write_mvhd(out, MOVIE_TIMESCALE as u32, movie_duration, next_id);
                for track in &tracks {
                    write_track(out, track, start_s, movie_duration, mdat_data_start);
                }
            });
            head
        };
        let head_len = head_for(0).len() as u64;
        let mdat_header_len = 16u64; // always the 64-bit form
        let mut head = head_for(head_len + mdat_header_len);
        u32be(&mut head, 1);
        head.extend_from_slice(b"mdat");
        u64be(&mut head, mdat_header_len + self.mdat_len);
        let total_len = head.len() as u64 + self.mdat_len;
        Ok(Mp4Plan { head, copies: self.copies, total_len, duration_s })
    }
}

fn write_track(out: &mut Vec<u8>, track: &TrackBuild, start_s: f64, movie_duration: u64, mdat_data_start: u64) {
    let Some(info) = track.info.as_ref() else { return };
    let timescale = u64::from(info.timescale);
    let media_duration: u64 = track.samples.iter().map(|s| u64::from(s.duration)).sum();
    let header = TrakHeader {
        track_id: info.track_id,
        timescale: info.timescale,
        is_video: info.is_video,
        width: info.width,
        height: info.height,
        movie_duration,
        media_duration,
    };
    // Where the presentation starts in this track's media (ticks from its first sample).
    let start_ticks = (start_s * timescale as f64).round() as i128 - i128::from(track.first_dts.unwrap_or(0));
    let edts = |out: &mut Vec<u8>| {
        write_box(out, b"edts", |out| {
            write_full_box(out, b"elst", 1, 0, |out| {
                let mut entries: Vec<(u64, i64)> = Vec::new();
                let mut remaining = movie_duration;
                if start_ticks < 0 {
                    // The track starts after the presentation does: an empty edit first.
                    let empty = ((-start_ticks) as u64 * MOVIE_TIMESCALE / timescale).min(remaining);
                    entries.push((empty, -1));
                    remaining -= empty;
                }
                entries.push((remaining, start_ticks.max(0) as i64));
                u32be(out, entries.len() as u32);
                for (segment_duration, media_time) in entries {
                    u64be(out, segment_duration);
                    u64be(out, media_time as u64);
                    u32be(out, 0x0001_0000); // media_rate 1.0
                }
            });
        });
    };
    let stbl = |out: &mut Vec<u8>| {
        write_full_box(out, b"stsd", 0, 0, |out| {
            u32be(out, track.entries.len() as u32);
            for entry in &track.entries {
                out.extend_from_slice(entry);
            }
        });
        // stts: run-length coded durations.
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for sample in &track.samples {
            match runs.last_mut() {
                Some((count, duration)) if *duration == sample.duration => *count += 1,
                _ => runs.push((1, sample.duration)),
            }
        }
        write_full_box(out, b"stts", 0, 0, |out| {
            u32be(out, runs.len() as u32);
            for (count, duration) in &runs {
                u32be(out, *count);
                u32be(out, *duration);
            }
        });
        if track.samples.iter().any(|s| s.composition_offset != 0) {
            write_full_box(out, b"ctts", 1, 0, |out| {
                u32be(out, track.samples.len() as u32);
                for sample in &track.samples {
                    u32be(out, 1);
                    u32be(out, sample.composition_offset as u32);
                }
            });
        }
        if track.samples.iter().any(|s| !s.sync) {
            let sync: Vec<u32> =
                track.samples.iter().enumerate().filter(|(_, s)| s.sync).map(|(i, _)| i as u32 + 1).collect();
            write_full_box(out, b"stss", 0, 0, |out| {
                u32be(out, sync.len() as u32);
                for number in &sync {
                    u32be(out, *number);
                }
            });
        }
        // stsc: a new entry where samples per chunk or the sample description change.
        let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
        for (i, (_, count, description, _)) in track.chunks.iter().enumerate() {
            if stsc.last().is_none_or(|(_, c, d)| c != count || d != description) {
                stsc.push((i as u32 + 1, *count, *description));
            }
        }
        write_full_box(out, b"stsc", 0, 0, |out| {
            u32be(out, stsc.len() as u32);
            for (first, count, description) in &stsc {
                u32be(out, *first);
                u32be(out, *count);
                u32be(out, *description);
            }
        });
        write_full_box(out, b"stsz", 0, 0, |out| {
            u32be(out, 0);
            u32be(out, track.samples.len() as u32);
            for sample in &track.samples {
                u32be(out, sample.size);
            }
        });
        write_full_box(out, b"co64", 0, 0, |out| {
            u32be(out, track.chunks.len() as u32);
            for (_, _, _, offset) in &track.chunks {
                u64be(out, mdat_data_start + offset);
            }
        });
    };
    write_trak(out, &header, edts, stbl);
}

#[cfg(test)]
mod tests;
