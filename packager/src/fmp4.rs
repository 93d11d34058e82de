//! CMAF fragmented MP4 writing (ISO/IEC 14496-12 boxes, ISO/IEC 23000-19 CMAF constraints,
//! ISO/IEC 14496-15 §5.3 `avcC`, ISO/IEC 14496-3 / 14496-14 `esds` for AAC).
//!
//! Box writing is pure functions over plain structs: each box is written by a closure inside
//! [`write_box`], which patches the size afterwards, so sizes are always right. The init
//! segment is `ftyp` + `moov` (with `mvex`); a part or segment is `moof` + `mdat` (after any
//! `emsg` boxes, [`crate::emsg`]), one `traf` per track, sample data in track order,
//! `default-base-is-moof` offsets.

use bytes::Bytes;

/// A track of the init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackDescription {
    /// 1-based; the `traf` of a fragment names it.
    pub track_id: u32,
    /// Ticks per second of this track's decode times and durations.
    pub timescale: u32,
    pub entry: SampleEntry,
}

/// The `stsd` entry of a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// `avc1` with `avcC` (parameter sets out of band).
    Avc { sps: Bytes, pps: Bytes, width: u16, height: u16 },
    /// `mp4a` with an `esds` carrying the AudioSpecificConfig.
    Aac { sample_rate: u32, channels: u16, audio_specific_config: Bytes, bitrate: u32 },
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// A sync sample (IDR; every AAC frame).
    pub keyframe: bool,
    pub data: Bytes,
}

/// The samples of one track in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// Decode time of the first sample (`tfdt`), in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

/// Writes one box: `size`, `fourcc`, then what `body` writes.
pub fn write_box(out: &mut Vec<u8>, fourcc: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(fourcc);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box: a box whose body starts with `version` and 24 bits of `flags`.
pub fn write_full_box(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    write_box(out, fourcc, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out);
    });
}

pub(crate) fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u64be(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd`/`tkhd`.
fn matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// `ftyp` + `moov` for `tracks`.
pub fn init_segment(tracks: &[TrackDescription]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_box(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        u32be(out, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    write_box(&mut out, b"moov", |out| {
        // Durations are 0: the media is in fragments.
        write_mvhd(out, 1000, 0, tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1);
        for track in tracks {
            let (is_video, width, height) = match &track.entry {
                SampleEntry::Avc { width, height, .. } => (true, *width, *height),
                SampleEntry::Aac { .. } => (false, 0, 0),
            };
            let header = TrakHeader {
                track_id: track.track_id,
                timescale: track.timescale,
                is_video,
                width,
                height,
                movie_duration: 0,
                media_duration: 0,
            };
            write_trak(
                out,
                &header,
                |_| {},
                |out| {
                    write_full_box(out, b"stsd", 0, 0, |out| {
                        u32be(out, 1);
                        write_sample_entry(out, &track.entry);
                    });
                    write_full_box(out, b"stts", 0, 0, |out| u32be(out, 0));
                    write_full_box(out, b"stsc", 0, 0, |out| u32be(out, 0));
                    write_full_box(out, b"stsz", 0, 0, |out| {
                        u32be(out, 0);
                        u32be(out, 0);
                    });
                    write_full_box(out, b"stco", 0, 0, |out| u32be(out, 0));
                },
            );
        }
        write_box(out, b"mvex", |out| {
            for track in tracks {
                write_full_box(out, b"trex", 0, 0, |out| {
                    u32be(out, track.track_id);
                    u32be(out, 1); // default_sample_description_index
                    u32be(out, 0); // default_sample_duration
                    u32be(out, 0); // default_sample_size
                    u32be(out, 0); // default_sample_flags
                });
            }
        });
    });
    out
}

/// Writes `mvhd` (§8.2.2); version 1 only when the duration needs 64 bits.
pub fn write_mvhd(out: &mut Vec<u8>, timescale: u32, duration: u64, next_track_id: u32) {
    let wide = duration > u64::from(u32::MAX);
    write_full_box(out, b"mvhd", u8::from(wide), 0, |out| {
        times_and_duration(out, wide, Some(timescale), duration);
        u32be(out, 0x0001_0000); // rate 1.0
        u16be(out, 0x0100); // volume 1.0
        out.extend_from_slice(&[0; 10]);
        matrix(out);
        out.extend_from_slice(&[0; 24]); // pre_defined
        u32be(out, next_track_id);
    });
}

/// creation_time, modification_time (0), then the timescale if any, then the duration: 32 or
/// 64 bits each by the box's version.
fn times_and_duration(out: &mut Vec<u8>, wide: bool, timescale: Option<u32>, duration: u64) {
    let times = if wide { 16 } else { 8 };
    out.extend_from_slice(&[0; 16][..times]);
    if let Some(timescale) = timescale {
        u32be(out, timescale);
    }
    if wide {
        u64be(out, duration);
    } else {
        u32be(out, duration as u32);
    }
}

/// What a `trak` says apart from its sample tables (§8.3.2 `tkhd`, §8.4.2 `mdhd`, §8.4.3 `hdlr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrakHeader {
    pub track_id: u32,
    pub timescale: u32,
    pub is_video: bool,
    pub width: u16,
    pub height: u16,
    /// In the movie's timescale (`tkhd`); 0 for fragmented media.
    pub movie_duration: u64,
    /// In the track's timescale (`mdhd`); 0 for fragmented media.
    pub media_duration: u64,
}

/// Writes a `trak`: `tkhd`, what `edts` writes (an edit list, or nothing), and `mdia` down to
/// an `stbl` whose body `stbl` writes.
pub fn write_trak(
    out: &mut Vec<u8>,
    header: &TrakHeader,
    edts: impl FnOnce(&mut Vec<u8>),
    stbl: impl FnOnce(&mut Vec<u8>),
) {
    let is_video = header.is_video;
    write_box(out, b"trak", |out| {
        let wide = header.movie_duration > u64::from(u32::MAX);
        write_full_box(out, b"tkhd", u8::from(wide), 0x3, |out| {
            let times = if wide { 16 } else { 8 };
            out.extend_from_slice(&[0; 16][..times]);
            u32be(out, header.track_id);
            u32be(out, 0); // reserved
            if wide {
                u64be(out, header.movie_duration);
            } else {
                u32be(out, header.movie_duration as u32);
            }
            out.extend_from_slice(&[0; 8]);
            u16be(out, 0); // layer
            u16be(out, if is_video { 0 } else { 1 }); // alternate_group
            u16be(out, if is_video { 0 } else { 0x0100 }); // volume
            u16be(out, 0);
            matrix(out);
            u32be(out, u32::from(header.width) << 16);
            u32be(out, u32::from(header.height) << 16);
        });
        edts(out);
        write_box(out, b"mdia", |out| {
            let wide = header.media_duration > u64::from(u32::MAX);
            write_full_box(out, b"mdhd", u8::from(wide), 0, |out| {
                times_and_duration(out, wide, Some(header.timescale), header.media_duration);
                u16be(out, 0x55c4); // language "und"
                u16be(out, 0);
            });
            write_full_box(out, b"hdlr", 0, 0, |out| {
                u32be(out, 0);
                out.extend_from_slice(if is_video { b"vide" } else { b"soun" });
                out.extend_from_slice(&[0; 12]);
                out.extend_from_slice(if is_video { b"townhall video\0" } else { b"townhall audio\0" });
            });
            write_box(out, b"minf", |out| {
                if is_video {
                    write_full_box(out, b"vmhd", 0, 1, |out| out.extend_from_slice(&[0; 8]));
                } else {
                    write_full_box(out, b"smhd", 0, 0, |out| out.extend_from_slice(&[0; 4]));
                }
                write_box(out, b"dinf", |out| {
                    write_full_box(out, b"dref", 0, 0, |out| {
                        u32be(out, 1);
                        write_full_box(out, b"url ", 0, 1, |_| {});
                    });
                });
                write_box(out, b"stbl", stbl);
            });
        });
    });
}

fn write_sample_entry(out: &mut Vec<u8>, entry: &SampleEntry) {
    match entry {
        SampleEntry::Avc { sps, pps, width, height } => write_box(out, b"avc1", |out| {
            out.extend_from_slice(&[0; 6]);
            u16be(out, 1); // data_reference_index
            out.extend_from_slice(&[0; 16]); // pre_defined, reserved
            u16be(out, *width);
            u16be(out, *height);
            u32be(out, 0x0048_0000); // 72 dpi
            u32be(out, 0x0048_0000);
            u32be(out, 0);
            u16be(out, 1); // frame_count
            out.extend_from_slice(&[0; 32]); // compressorname
            u16be(out, 0x0018); // depth
            u16be(out, 0xffff); // pre_defined = -1
            write_box(out, b"avcC", |out| {
                out.push(1); // configurationVersion
                out.push(sps.get(1).copied().unwrap_or(0x42)); // AVCProfileIndication
                out.push(sps.get(2).copied().unwrap_or(0)); // profile_compatibility
                out.push(sps.get(3).copied().unwrap_or(0x1f)); // AVCLevelIndication
                out.push(0xff); // lengthSizeMinusOne = 3
                out.push(0xe1); // one SPS
                u16be(out, sps.len() as u16);
                out.extend_from_slice(sps);
                out.push(1); // one PPS
                u16be(out, pps.len() as u16);
                out.extend_from_slice(pps);
            });
        }),
        SampleEntry::Aac { sample_rate, channels, audio_specific_config, bitrate } => write_box(out, b"mp4a", |out| {
            out.extend_from_slice(&[0; 6]);
            u16be(out, 1);
            out.extend_from_slice(&[0; 8]);
            u16be(out, *channels);
            u16be(out, 16); // samplesize
            u16be(out, 0);
            u16be(out, 0);
            u32be(out, sample_rate.min(&0xffff) << 16);
            write_full_box(out, b"esds", 0, 0, |out| {
                // ES_Descriptor (tag 3) > DecoderConfigDescriptor (tag 4) > DecoderSpecificInfo (tag 5),
                // then SLConfigDescriptor (tag 6), each with a one-byte size (all are small).
                let asc = audio_specific_config;
                let dsi_len = asc.len();
                let dcd_len = 13 + 2 + dsi_len;
                let es_len = 3 + 2 + dcd_len + 3;
                out.extend_from_slice(&[0x03, es_len as u8]);
                u16be(out, 1); // ES_ID
                out.push(0); // flags
                out.extend_from_slice(&[0x04, dcd_len as u8]);
                out.push(0x40); // objectTypeIndication: MPEG-4 Audio
                out.push(0x15); // streamType audio (5) << 2 | upStream 0 | reserved 1
                out.extend_from_slice(&[0, 0x18, 0]); // bufferSizeDB 6144
                u32be(out, *bitrate); // maxBitrate
                u32be(out, *bitrate); // avgBitrate
                out.extend_from_slice(&[0x05, dsi_len as u8]);
                out.extend_from_slice(asc);
                out.extend_from_slice(&[0x06, 0x01, 0x02]);
            });
        }),
    }
}

/// Sample flags (ISO/IEC 14496-12 §8.8.3.1): sync samples depend on nothing; others depend
/// on earlier samples and are not sync samples.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// `moof` + `mdat` for one part or segment.
pub fn media_fragment(sequence_number: u32, runs: &[TrackRun]) -> Vec<u8> {
    let mut out = Vec::new();
    write_media_fragment(&mut out, sequence_number, runs);
    out
}

/// Appends `moof` + `mdat` for one part or segment to `out`, after whatever it holds already
/// (e.g. `emsg` boxes, which CMAF puts before the `moof`): sample offsets count from the `moof`.
pub fn write_media_fragment(out: &mut Vec<u8>, sequence_number: u32, runs: &[TrackRun]) {
    let data_len: usize = runs.iter().flat_map(|r| &r.samples).map(|s| s.data.len()).sum();
    out.reserve(data_len + 256 + 16 * runs.iter().map(|r| r.samples.len()).sum::<usize>());
    let moof_start = out.len();
    // Where each trun's data_offset field is, to patch once the moof size is known.
    let mut offset_fields = Vec::with_capacity(runs.len());
    write_box(out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| u32be(out, sequence_number));
        for run in runs {
            write_box(out, b"traf", |out| {
                // default-base-is-moof
                write_full_box(out, b"tfhd", 0, 0x02_0000, |out| u32be(out, run.track_id));
                write_full_box(out, b"tfdt", 1, 0, |out| u64be(out, run.base_decode_time));
                // data-offset, sample-duration, sample-size, sample-flags present
                write_full_box(out, b"trun", 0, 0x000701, |out| {
                    u32be(out, run.samples.len() as u32);
                    offset_fields.push(out.len());
                    u32be(out, 0);
                    for sample in &run.samples {
                        u32be(out, sample.duration);
                        u32be(out, sample.data.len() as u32);
                        u32be(out, if sample.keyframe { SYNC_SAMPLE_FLAGS } else { NON_SYNC_SAMPLE_FLAGS });
                    }
                });
            });
        }
    });
    let moof_len = out.len() - moof_start;
    let mut data_offset = moof_len + 8;
    for (run, field) in runs.iter().zip(offset_fields) {
        out[field..field + 4].copy_from_slice(&(data_offset as u32).to_be_bytes());
        data_offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    write_box(out, b"mdat", |out| {
        for sample in runs.iter().flat_map(|r| &r.samples) {
            out.extend_from_slice(&sample.data);
        }
    });
}

/// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) of AAC-LC at `sample_rate` with
/// `channels`: 5 bits object type 2, 4 bits frequency index, 4 bits channel configuration.
pub fn aac_lc_audio_specific_config(sample_rate: u32, channels: u8) -> Bytes {
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let index = RATES.iter().position(|&r| r == sample_rate).unwrap_or(3) as u16;
    let config: u16 = (2 << 11) | (index << 7) | (u16::from(channels & 0x0f) << 3);
    Bytes::copy_from_slice(&config.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Decode, Ftyp, Mdat, Moof, Moov};

    fn video_track() -> TrackDescription {
        TrackDescription {
            track_id: 1,
            timescale: 90_000,
            entry: SampleEntry::Avc {
                sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f, 0x8c]),
                pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
                width: 640,
                height: 360,
            },
        }
    }

    fn audio_track() -> TrackDescription {
        TrackDescription {
            track_id: 2,
            timescale: 48_000,
            entry: SampleEntry::Aac {
                sample_rate: 48_000,
                channels: 2,
                audio_specific_config: aac_lc_audio_specific_config(48_000, 2),
                bitrate: 128_000,
            },
        }
    }

    #[test]
    fn audio_specific_config_of_48k_stereo_aac_lc() {
        assert_eq!(&aac_lc_audio_specific_config(48_000, 2)[..], &[0x11, 0x90]);
        assert_eq!(&aac_lc_audio_specific_config(44_100, 1)[..], &[0x12, 0x08]);
    }

    #[test]
    fn init_segment_parses_back_with_an_independent_strict_parser() {
        let init = init_segment(&[video_track(), audio_track()]);
        let mut input = std::io::Cursor::new(&init[..]);
        let ftyp = Ftyp::decode(&mut input).unwrap();
        assert_eq!(ftyp.major_brand.as_ref(), b"iso6");
        let moov = Moov::decode(&mut input).unwrap();
        assert_eq!(input.position() as usize, init.len());
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 2);
        let video = &moov.trak[0];
        assert_eq!(video.tkhd.track_id, 1);
        assert_eq!(video.mdia.mdhd.timescale, 90_000);
        let codec = &video.mdia.minf.stbl.stsd.codecs[0];
        let mp4_atom::Codec::Avc1(avc1) = codec else { panic!("{codec:?}") };
        assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
        assert_eq!(avc1.avcc.avc_profile_indication, 0x42);
        assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);
        let codec = &moov.trak[1].mdia.minf.stbl.stsd.codecs[0];
        let mp4_atom::Codec::Mp4a(mp4a) = codec else { panic!("{codec:?}") };
        assert_eq!(mp4a.audio.channel_count, 2);
        assert_eq!(mp4a.esds.es_desc.dec_config.object_type_indication, 0x40);
    }

    #[test]
    fn fragments_point_at_their_samples() {
        let runs = vec![
            TrackRun {
                track_id: 1,
                base_decode_time: 9_000_000,
                samples: vec![
                    Sample { duration: 3000, keyframe: true, data: Bytes::from_static(b"keyframe") },
                    Sample { duration: 3000, keyframe: false, data: Bytes::from_static(b"delta") },
                ],
            },
            TrackRun {
                track_id: 2,
                base_decode_time: 4_800_000,
                samples: vec![Sample { duration: 1024, keyframe: true, data: Bytes::from_static(b"aac!") }],
            },
        ];
        let fragment = media_fragment(7, &runs);
        let mut input = std::io::Cursor::new(&fragment[..]);
        let moof = Moof::decode(&mut input).unwrap();
        let mdat = Mdat::decode(&mut input).unwrap();
        assert_eq!(input.position() as usize, fragment.len());
        assert_eq!(moof.mfhd.sequence_number, 7);
        assert_eq!(moof.traf.len(), 2);
        assert_eq!(moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time, 9_000_000);
        let trun = &moof.traf[0].trun[0];
        assert_eq!(trun.samples.len(), 2);
        assert_eq!(trun.samples.get(0).unwrap().duration, Some(3000));
        assert_eq!(trun.samples.get(1).unwrap().flags, Some(NON_SYNC_SAMPLE_FLAGS));
        // data_offset is relative to the moof start and lands on each track's first sample.
        let moof_len = fragment.len() - mdat.data.len() - 8;
        let offset = trun.data_offset.unwrap() as usize;
        assert_eq!(&fragment[offset..offset + 8], b"keyframe");
        let audio_offset = moof.traf[1].trun[0].data_offset.unwrap() as usize;
        assert_eq!(&fragment[audio_offset..audio_offset + 4], b"aac!");
        assert_eq!(offset, moof_len + 8);
        assert_eq!(&mdat.data[..], b"keyframedeltaaac!");
        // After other boxes (emsg), the fragment is the same bytes: offsets count from the moof.
        let mut prefixed = b"\0\0\0\x08free".to_vec();
        write_media_fragment(&mut prefixed, 7, &runs);
        assert_eq!(&prefixed[8..], &fragment[..]);
    }
}
