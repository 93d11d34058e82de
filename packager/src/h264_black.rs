//! Black pictures written in a presenter's own H.264 parameter sets, for "turn off their
//! video": the program and the stage show black in place of their picture with the same
//! timestamps and keyframes, and no new init section or discontinuity is needed.
//!
//! ITU-T H.264 (08/2021): slice header §7.3.3, slice data §7.3.4, macroblock layer §7.3.5,
//! CAVLC `coeff_token` §9.2.1 (Table 9-5), Intra_16x16 DC prediction §8.3.3.3, emulation
//! prevention §7.4.1.
//!
//! - A keyframe becomes an IDR picture, one I slice: the first macroblock is I_PCM with
//!   Y = 16, Cb = Cr = 128 (black, limited range); every other macroblock is I_16x16 with DC
//!   prediction and no residual, which copies the mean of its neighbours: black again, at about
//!   one byte a macroblock (3.6 kB for 720p).
//! - Any other frame becomes a P picture whose macroblocks are all skipped (one
//!   `mb_skip_run`): a copy of the previous black picture, a few bytes. These are reference
//!   pictures with `frame_num` counting up from the IDR, so every `pic_order_cnt_type` (0, 1,
//!   2) gets increasing picture order counts.
//! - The slices are CAVLC. When the presenter's PPS is CABAC (x264 main/high, OBS) or uses
//!   slice groups, the black keyframe carries a PPS of our own ([`BlackPictures::own_pps`]):
//!   CAVLC, in the presenter's SPS, with an id the presenter's PPS does not use. A decoder
//!   takes it in band (RTP always allows that; in an `avc1` MP4 sample it is tolerated by
//!   FFmpeg, Chromium and Safari, which is what we target).
//! - Refused ([`BlackError::Unsupported`]): MBAFF (interlaced macroblock pairs), 4:4:4 and
//!   separate colour planes. Monochrome, 4:2:2, high bit depths and field-coded (non-MBAFF)
//!   streams are handled (frame pictures).

use bytes::{BufMut, Bytes, BytesMut};

use crate::pps::{PpsInfo, parse_pps};
use crate::sps::{SpsInfo, parse_sps};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlackError {
    #[error("malformed SPS")]
    Sps,
    #[error("malformed PPS")]
    Pps,
    #[error("the PPS refers to SPS {pps_sps}, the SPS is {sps}")]
    Mismatch { sps: u32, pps_sps: u32 },
    #[error("cannot write black pictures for {0}")]
    Unsupported(&'static str),
}

const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_PPS: u8 = 8;
/// mb_type of an I slice (Table 7-11).
const MB_TYPE_I_PCM: u32 = 25;
/// I_16x16_2_0_0: Intra_16x16, DC prediction (2), no chroma or luma coefficients.
const MB_TYPE_I_16X16_DC_NO_RESIDUAL: u32 = 3;
/// The largest frame of any level (Table A-1, level 6.2 MaxFS).
const MAX_FRAME_MBS: u32 = 139_264;

/// The slice-header-shaping fields of the PPS the black slices refer to.
#[derive(Debug, Clone, Copy)]
struct SlicePps {
    id: u32,
    bottom_field_pic_order_in_frame_present: bool,
    weighted_pred: bool,
    deblocking_filter_control_present: bool,
    redundant_pic_cnt_present: bool,
}

/// Writes black pictures, one after the other, in one presenter's SPS/PPS.
#[derive(Debug, Clone)]
pub struct BlackPictures {
    sps: SpsInfo,
    pps: SlicePps,
    own_pps: Option<Bytes>,
    /// Pictures written since the last IDR (the IDR is 0); `None` before the first IDR.
    since_idr: Option<u32>,
    idr_count: u32,
}

impl BlackPictures {
    /// Prepares black pictures for a stream with this SPS and PPS (NAL units with their
    /// one-byte headers, as in `Codec::H264`).
    pub fn new(sps: &[u8], pps: &[u8]) -> Result<Self, BlackError> {
        let sps = parse_sps(sps).ok_or(BlackError::Sps)?;
        let theirs = parse_pps(pps).ok_or(BlackError::Pps)?;
        if theirs.seq_parameter_set_id != sps.seq_parameter_set_id {
            return Err(BlackError::Mismatch { sps: sps.seq_parameter_set_id, pps_sps: theirs.seq_parameter_set_id });
        }
        if sps.mb_adaptive_frame_field {
            return Err(BlackError::Unsupported("MBAFF (interlaced macroblock pairs)"));
        }
        if sps.chroma_format_idc > 2 || sps.separate_colour_plane {
            return Err(BlackError::Unsupported("4:4:4 chroma"));
        }
        if sps.bit_depth_luma > 14 || sps.bit_depth_chroma > 14 {
            return Err(BlackError::Unsupported("bit depths above 14"));
        }
        if sps.width_in_mbs * sps.frame_height_in_mbs() > MAX_FRAME_MBS {
            return Err(BlackError::Unsupported("pictures above level 6.2"));
        }
        let (pps, own_pps) = if theirs.entropy_coding_mode || theirs.num_slice_groups > 1 {
            let id = if theirs.pic_parameter_set_id == 255 { 254 } else { 255 };
            (
                SlicePps {
                    id,
                    bottom_field_pic_order_in_frame_present: false,
                    weighted_pred: false,
                    deblocking_filter_control_present: true,
                    redundant_pic_cnt_present: false,
                },
                Some(cavlc_pps(id, sps.seq_parameter_set_id)),
            )
        } else {
            (slice_pps(&theirs), None)
        };
        Ok(Self { sps, pps, own_pps, since_idr: None, idr_count: 0 })
    }

    /// The CAVLC PPS of our own that the black keyframes carry, when the presenter's PPS
    /// cannot describe CAVLC slices.
    pub fn own_pps(&self) -> Option<&Bytes> {
        self.own_pps.as_ref()
    }

    /// The NAL units of the next black picture: an IDR (preceded by our own PPS, if any) when
    /// `keyframe` or when no IDR was written yet, otherwise a P picture that repeats the last.
    pub fn next_picture(&mut self, keyframe: bool) -> Vec<Bytes> {
        let idr = keyframe || self.since_idr.is_none() || self.sps.max_num_ref_frames == 0;
        let mut nals = Vec::with_capacity(2);
        if idr {
            if let Some(pps) = &self.own_pps {
                nals.push(pps.clone());
            }
            nals.push(self.idr_slice());
            self.since_idr = Some(0);
            self.idr_count = self.idr_count.wrapping_add(1);
        } else {
            let n = self.since_idr.map_or(1, |n| n.wrapping_add(1));
            self.since_idr = Some(n);
            nals.push(self.skipped_slice(n));
        }
        nals
    }

    fn pic_size_in_mbs(&self) -> u32 {
        self.sps.width_in_mbs * self.sps.frame_height_in_mbs()
    }

    fn chroma_array_type(&self) -> u32 {
        self.sps.chroma_format_idc
    }

    /// §7.3.3, for a frame picture written by us: `picture` counts from the IDR (0).
    fn slice_header(&self, w: &mut BitWriter, idr: bool, picture: u32) {
        let sps = &self.sps;
        w.ue(0); // first_mb_in_slice
        w.ue(if idr { 7 } else { 5 }); // slice_type: I or P, all slices of the picture alike
        w.ue(self.pps.id);
        let max_frame_num = 1u64 << sps.log2_max_frame_num;
        w.bits((u64::from(picture) % max_frame_num) as u32, sps.log2_max_frame_num);
        if !sps.frame_mbs_only {
            w.bit(false); // field_pic_flag
        }
        if idr {
            w.ue(self.idr_count % 2); // idr_pic_id: differs from the previous one of ours
        }
        match sps.pic_order_cnt_type {
            0 => {
                let max_lsb = 1u64 << sps.log2_max_pic_order_cnt_lsb;
                w.bits(((2 * u64::from(picture)) % max_lsb) as u32, sps.log2_max_pic_order_cnt_lsb);
                if self.pps.bottom_field_pic_order_in_frame_present {
                    w.se_zero(); // delta_pic_order_cnt_bottom
                }
            }
            1 if !sps.delta_pic_order_always_zero => {
                w.se_zero(); // delta_pic_order_cnt[0]
                if self.pps.bottom_field_pic_order_in_frame_present {
                    w.se_zero(); // delta_pic_order_cnt[1]
                }
            }
            _ => {}
        }
        if self.pps.redundant_pic_cnt_present {
            w.ue(0);
        }
        if !idr {
            w.bit(true); // num_ref_idx_active_override_flag
            w.ue(0); // num_ref_idx_l0_active_minus1: one reference, the previous black picture
            w.bit(false); // ref_pic_list_modification_flag_l0
            if self.pps.weighted_pred {
                w.ue(0); // luma_log2_weight_denom
                if self.chroma_array_type() != 0 {
                    w.ue(0); // chroma_log2_weight_denom
                }
                w.bit(false); // luma_weight_l0_flag
                if self.chroma_array_type() != 0 {
                    w.bit(false); // chroma_weight_l0_flag
                }
            }
        }
        // dec_ref_pic_marking (every black picture is a reference picture).
        if idr {
            w.bit(false); // no_output_of_prior_pics_flag
            w.bit(false); // long_term_reference_flag
        } else {
            w.bit(false); // adaptive_ref_pic_marking_mode_flag: sliding window
        }
        w.se_zero(); // slice_qp_delta
        if self.pps.deblocking_filter_control_present {
            w.ue(1); // disable_deblocking_filter_idc: nothing to smooth
        }
    }

    fn idr_slice(&self) -> Bytes {
        let sps = &self.sps;
        let mut w = BitWriter::with_capacity(self.pic_size_in_mbs() as usize + 512);
        self.slice_header(&mut w, true, 0);
        let width = sps.width_in_mbs;
        for addr in 0..self.pic_size_in_mbs() {
            let (x, y) = (addr % width, addr / width);
            if addr == 0 {
                w.ue(MB_TYPE_I_PCM);
                w.align_zero();
                let luma = 16u32 << (sps.bit_depth_luma - 8);
                for _ in 0..256 {
                    w.bits(luma, sps.bit_depth_luma);
                }
                let chroma_samples = match sps.chroma_format_idc {
                    0 => 0,
                    1 => 2 * 64,
                    _ => 2 * 128,
                };
                let chroma = 128u32 << (sps.bit_depth_chroma - 8);
                for _ in 0..chroma_samples {
                    w.bits(chroma, sps.bit_depth_chroma);
                }
                continue;
            }
            w.ue(MB_TYPE_I_16X16_DC_NO_RESIDUAL);
            if self.chroma_array_type() != 0 {
                w.ue(0); // intra_chroma_pred_mode: DC
            }
            w.se_zero(); // mb_qp_delta
            // Intra16x16DCLevel with no coefficients: its coeff_token depends on nC (§9.2.1),
            // the coefficients of the blocks left and above. Only the I_PCM macroblock (0, 0)
            // counts (16); I_16x16 macroblocks without AC coefficients count 0.
            let left = (x > 0).then_some(x == 1 && y == 0);
            let above = (y > 0).then_some(x == 0 && y == 1);
            let n = |pcm: bool| if pcm { 16 } else { 0 };
            let nc = match (left, above) {
                (Some(a), Some(b)) => (n(a) + n(b) + 1) >> 1,
                (Some(a), None) => n(a),
                (None, Some(b)) => n(b),
                (None, None) => 0,
            };
            match nc {
                0..2 => w.bits(0b1, 1),
                2..4 => w.bits(0b11, 2),
                4..8 => w.bits(0b1111, 4),
                _ => w.bits(0b000011, 6),
            }
        }
        nal(3, NAL_IDR, w.finish())
    }

    fn skipped_slice(&self, picture: u32) -> Bytes {
        let mut w = BitWriter::with_capacity(16);
        self.slice_header(&mut w, false, picture);
        w.ue(self.pic_size_in_mbs()); // mb_skip_run: every macroblock copies the reference
        nal(2, NAL_SLICE, w.finish())
    }
}

fn slice_pps(pps: &PpsInfo) -> SlicePps {
    SlicePps {
        id: pps.pic_parameter_set_id,
        bottom_field_pic_order_in_frame_present: pps.bottom_field_pic_order_in_frame_present,
        weighted_pred: pps.weighted_pred,
        deblocking_filter_control_present: pps.deblocking_filter_control_present,
        redundant_pic_cnt_present: pps.redundant_pic_cnt_present,
    }
}

/// A CAVLC PPS (§7.3.2.2) with defaults everywhere and deblocking control present.
fn cavlc_pps(id: u32, sps_id: u32) -> Bytes {
    let mut w = BitWriter::with_capacity(8);
    w.ue(id);
    w.ue(sps_id);
    w.bit(false); // entropy_coding_mode_flag: CAVLC
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.se_zero(); // pic_init_qp_minus26
    w.se_zero(); // pic_init_qs_minus26
    w.se_zero(); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    nal(3, NAL_PPS, w.finish())
}

/// One NAL unit: its header, then the RBSP with emulation prevention (§7.4.1).
fn nal(nal_ref_idc: u8, nal_unit_type: u8, rbsp: Vec<u8>) -> Bytes {
    let mut out = BytesMut::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    out.put_u8((nal_ref_idc << 5) | nal_unit_type);
    let mut zeros = 0;
    for b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.put_u8(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.put_u8(b);
    }
    out.freeze()
}

/// NAL units in AVCC form (4-byte big-endian lengths, ISO/IEC 14496-15 §5.3.2).
pub fn to_avcc(nals: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.extend_from_slice(nal);
    }
    out.freeze()
}

/// Writes bits MSB first.
struct BitWriter {
    out: Vec<u8>,
    current: u8,
    used: u32,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> Self {
        Self { out: Vec::with_capacity(bytes), current: 0, used: 0 }
    }

    fn bit(&mut self, bit: bool) {
        self.current = (self.current << 1) | u8::from(bit);
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn bits(&mut self, value: u32, n: u32) {
        for i in (0..n).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// Unsigned Exp-Golomb (§9.1).
    fn ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        for _ in 1..len {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// se(v) of 0: a single 1 bit.
    fn se_zero(&mut self) {
        self.bit(true);
    }

    fn align_zero(&mut self) {
        while self.used != 0 {
            self.bit(false);
        }
    }

    /// rbsp_trailing_bits (§7.3.2.11), then the bytes.
    fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        self.align_zero();
        self.out
    }
}

#[cfg(test)]
mod tests;
