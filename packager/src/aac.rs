//! Opus (RFC 7587 payloads) → AAC-LC (ISO/IEC 14496-3) for the program's audio: Safari and
//! many HLS players cannot play Opus. Decoding, resampling and encoding are done by FFmpeg's
//! libraries (libavcodec's `opus` decoder and native `aac` encoder, libswresample), linked
//! through ffmpeg-next; no process, no I/O, no clock.
//!
//! Timing, decided here: the AAC timeline is a continuous count of 48 kHz samples from the
//! first Opus packet. A gap in the Opus timestamps (lost packets, DTX silence) is filled with
//! silence, up to one second, so audio stays aligned with the media clock; a larger jump
//! restarts the timeline at the new timestamp ([`AacFrame::discontinuity`]). Overlapping
//! packets are dropped. The encoder's priming delay (1024 samples) is reported by
//! [`OpusToAac::priming_samples`] and kept out of the timestamps.

use bytes::Bytes;
use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type;
use ffmpeg::{ChannelLayout, codec, frame};
use ffmpeg_next as ffmpeg;

pub const SAMPLE_RATE: u32 = 48_000;
pub const CHANNELS: u16 = 2;
/// Samples per AAC-LC frame.
pub const AAC_FRAME_SAMPLES: u32 = 1024;
const MAX_GAP_SAMPLES: u64 = SAMPLE_RATE as u64;

#[derive(Debug, thiserror::Error)]
pub enum AacError {
    #[error("ffmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error("ffmpeg has no {0} codec")]
    MissingCodec(&'static str),
}

/// One AAC-LC access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacFrame {
    /// Position of its first sample on the AAC timeline (48 kHz ticks).
    pub pts: u64,
    /// The timeline restarted before this frame.
    pub discontinuity: bool,
    pub data: Bytes,
}

/// The transcoder of one audio track.
pub struct OpusToAac {
    decoder: ffmpeg::decoder::Audio,
    encoder: ffmpeg::encoder::Audio,
    resampler: Option<ffmpeg::software::resampling::Context>,
    /// Planar f32 samples waiting to fill an AAC frame, per channel.
    fifo: [Vec<f32>; 2],
    /// Opus timestamp (48 kHz, extended) the next decoded sample should have.
    expected_opus_pts: Option<u64>,
    /// AAC timeline position of the first sample in `fifo`.
    fifo_pts: u64,
    /// Offset added to Opus timestamps to place them on the AAC timeline.
    origin: u64,
    pending_discontinuity: bool,
    bitrate: u32,
}

fn stereo_planar() -> Sample {
    Sample::F32(Type::Planar)
}

impl OpusToAac {
    pub fn new(bitrate: u32) -> Result<Self, AacError> {
        ffmpeg::init()?;
        // libav's own notes (encoder statistics at close) are not ours to print.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        let opus = ffmpeg::decoder::find(codec::Id::OPUS).ok_or(AacError::MissingCodec("opus decoder"))?;
        let mut context = codec::context::Context::new_with_codec(opus);
        // SAFETY: plain field writes on a context we own, before it is opened.
        unsafe {
            let raw = context.as_mut_ptr();
            (*raw).sample_rate = SAMPLE_RATE as i32;
            (*raw).channels = i32::from(CHANNELS);
            (*raw).channel_layout = ChannelLayout::STEREO.bits();
        }
        let decoder = context.decoder().audio()?;

        let aac = ffmpeg::encoder::find(codec::Id::AAC).ok_or(AacError::MissingCodec("aac encoder"))?;
        let mut encoder = codec::context::Context::new_with_codec(aac).encoder().audio()?;
        encoder.set_rate(SAMPLE_RATE as i32);
        encoder.set_channel_layout(ChannelLayout::STEREO);
        encoder.set_format(stereo_planar());
        encoder.set_bit_rate(bitrate as usize);
        // SAFETY: plain field writes before opening; time base 1/48000.
        unsafe {
            let raw = encoder.as_mut_ptr();
            (*raw).channels = i32::from(CHANNELS);
            (*raw).time_base = ffmpeg::ffi::AVRational { num: 1, den: SAMPLE_RATE as i32 };
        }
        let encoder = encoder.open_as(aac)?;
        Ok(Self {
            decoder,
            encoder,
            resampler: None,
            fifo: [Vec::new(), Vec::new()],
            expected_opus_pts: None,
            fifo_pts: 0,
            origin: 0,
            pending_discontinuity: false,
            bitrate,
        })
    }

    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// The encoder's delay: its first output decodes to this many samples of priming.
    pub fn priming_samples(&self) -> u32 {
        // SAFETY: reading a field of the opened encoder.
        unsafe { (*self.encoder.as_ptr()).initial_padding.max(0) as u32 }
    }

    /// Starts the AAC timeline with `samples` of silence before the first Opus packet (call it
    /// before the first [`push`](Self::push)): so the audio of an epoch can begin with its
    /// video, when the first Opus packet was captured a little after the keyframe.
    pub fn lead_in(&mut self, samples: usize) {
        if self.expected_opus_pts.is_none() {
            for channel in &mut self.fifo {
                channel.extend(std::iter::repeat_n(0.0, samples));
            }
        }
    }

    /// Transcodes one Opus packet whose first sample is at `opus_pts` (48 kHz, 64-bit).
    pub fn push(&mut self, opus: &[u8], opus_pts: u64) -> Result<Vec<AacFrame>, AacError> {
        match self.expected_opus_pts {
            None => {
                self.origin = self.fifo_pts.wrapping_sub(opus_pts);
            }
            Some(expected) if opus_pts < expected => return Ok(Vec::new()),
            Some(expected) if opus_pts - expected > MAX_GAP_SAMPLES => {
                // Too long a silence to fill: restart the timeline here.
                self.fifo = [Vec::new(), Vec::new()];
                self.fifo_pts = opus_pts.wrapping_add(self.origin);
                self.pending_discontinuity = true;
            }
            Some(expected) if opus_pts > expected => {
                let gap = (opus_pts - expected) as usize;
                for channel in &mut self.fifo {
                    channel.extend(std::iter::repeat_n(0.0, gap));
                }
            }
            Some(_) => {}
        }
        let packet = ffmpeg::Packet::copy(opus);
        self.decoder.send_packet(&packet)?;
        let mut decoded = frame::Audio::empty();
        let mut samples = 0u64;
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            samples += decoded.samples() as u64;
            self.append(&decoded)?;
        }
        self.expected_opus_pts = Some(opus_pts + samples);
        self.encode_full_frames()
    }

    /// Converts a decoded frame to planar f32 stereo and appends it to the FIFO.
    fn append(&mut self, decoded: &frame::Audio) -> Result<(), AacError> {
        let matches =
            decoded.format() == stereo_planar() && decoded.rate() == SAMPLE_RATE && decoded.channels() == CHANNELS;
        let converted;
        let source = if matches {
            decoded
        } else {
            let resampler = match &mut self.resampler {
                Some(r) => r,
                None => self.resampler.insert(ffmpeg::software::resampling::Context::get(
                    decoded.format(),
                    decoded.channel_layout(),
                    decoded.rate(),
                    stereo_planar(),
                    ChannelLayout::STEREO,
                    SAMPLE_RATE,
                )?),
            };
            let mut out = frame::Audio::empty();
            resampler.run(decoded, &mut out)?;
            converted = out;
            &converted
        };
        let n = source.samples();
        for (index, channel) in self.fifo.iter_mut().enumerate() {
            channel.extend_from_slice(&source.plane::<f32>(index)[..n]);
        }
        Ok(())
    }

    fn encode_full_frames(&mut self) -> Result<Vec<AacFrame>, AacError> {
        let frame_size = (self.encoder.frame_size() as usize).max(AAC_FRAME_SAMPLES as usize);
        let mut out = Vec::new();
        while self.fifo[0].len() >= frame_size {
            let mut input = frame::Audio::new(stereo_planar(), frame_size, ChannelLayout::STEREO);
            input.set_rate(SAMPLE_RATE);
            for (index, channel) in self.fifo.iter_mut().enumerate() {
                input.plane_mut::<f32>(index)[..frame_size].copy_from_slice(&channel[..frame_size]);
                channel.drain(..frame_size);
            }
            input.set_pts(Some(self.fifo_pts as i64));
            self.fifo_pts += frame_size as u64;
            self.encoder.send_frame(&input)?;
            let mut packet = ffmpeg::Packet::empty();
            while self.encoder.receive_packet(&mut packet).is_ok() {
                let Some(pts) = packet.pts() else { continue };
                if pts < 0 {
                    continue; // priming
                }
                let Some(data) = packet.data() else { continue };
                out.push(AacFrame {
                    pts: pts as u64,
                    discontinuity: std::mem::take(&mut self.pending_discontinuity),
                    data: Bytes::copy_from_slice(data),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 ms CELT fullband stereo Opus packet (TOC 0xfc: config 31, stereo, one frame) whose
    /// frame decodes to silence: 960 samples per packet, like WebRTC publishers send.
    const OPUS_SILENCE_20MS: &[u8] = &[0xfc, 0xff, 0xfe];

    #[test]
    fn a_lead_in_puts_silence_before_the_first_packet() {
        let count = |lead: usize| {
            let mut t = OpusToAac::new(128_000).unwrap();
            t.lead_in(lead);
            let mut frames = Vec::new();
            for n in 0..50u64 {
                frames.extend(t.push(OPUS_SILENCE_20MS, 5_000 + n * 960).unwrap());
            }
            // A lead-in after the first packet changes nothing.
            t.lead_in(10 * 1024);
            frames.extend(t.push(OPUS_SILENCE_20MS, 5_000 + 50 * 960).unwrap());
            (frames.len(), frames.first().map(|f| f.pts))
        };
        let (without, first) = count(0);
        let (with, first_with) = count(3 * 1024);
        assert_eq!(with, without + 3, "three more AAC frames of silence");
        assert_eq!(first, first_with, "the timeline starts where it did, earlier in the audio");
    }

    #[test]
    fn twenty_ms_opus_packets_become_1024_sample_aac_frames() {
        let mut t = OpusToAac::new(128_000).unwrap();
        let mut frames = Vec::new();
        for n in 0..100u64 {
            frames.extend(t.push(OPUS_SILENCE_20MS, 1_000_000 + n * 960).unwrap());
        }
        // 2 s of audio = 93.75 AAC frames, minus the encoder's delay.
        assert!((90..=94).contains(&frames.len()), "{}", frames.len());
        for pair in frames.windows(2) {
            assert_eq!(pair[1].pts - pair[0].pts, 1024);
        }
        assert!(frames.iter().all(|f| !f.data.is_empty() && !f.discontinuity));
    }

    #[test]
    fn gaps_are_filled_and_long_jumps_restart_the_timeline() {
        let mut t = OpusToAac::new(96_000).unwrap();
        let mut frames = Vec::new();
        for n in 0..50u64 {
            frames.extend(t.push(OPUS_SILENCE_20MS, n * 960).unwrap());
        }
        // 200 ms lost: filled with silence, the timeline goes on.
        for n in 60..110u64 {
            frames.extend(t.push(OPUS_SILENCE_20MS, n * 960).unwrap());
        }
        assert!(frames.windows(2).all(|p| p[1].pts - p[0].pts == 1024));
        assert!(frames.len() >= 98, "{}", frames.len());
        // A late duplicate is dropped.
        assert!(t.push(OPUS_SILENCE_20MS, 5 * 960).unwrap().is_empty());
        // Ten seconds of nothing: restart.
        let mut later = Vec::new();
        for n in 600..700u64 {
            later.extend(t.push(OPUS_SILENCE_20MS, n * 960).unwrap());
        }
        assert!(later.first().unwrap().discontinuity);
    }
}
