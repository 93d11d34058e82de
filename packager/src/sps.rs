//! Just enough of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) to describe a
//! track (profile, level, the cropped picture size) and to write slices of our own in it
//! (frame numbering, picture order count, the size in macroblocks: see [`crate::h264_black`]).

/// What a muxer needs from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub width: u32,
    pub height: u32,
    pub seq_parameter_set_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u32,
    pub separate_colour_plane: bool,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    pub log2_max_frame_num: u32,
    pub pic_order_cnt_type: u32,
    /// Only meaningful for `pic_order_cnt_type` 0.
    pub log2_max_pic_order_cnt_lsb: u32,
    /// Only meaningful for `pic_order_cnt_type` 1.
    pub delta_pic_order_always_zero: bool,
    pub max_num_ref_frames: u32,
    pub width_in_mbs: u32,
    /// PicHeightInMapUnits: macroblock rows of a frame, or of a field when `!frame_mbs_only`.
    pub height_in_map_units: u32,
    pub frame_mbs_only: bool,
    pub mb_adaptive_frame_field: bool,
}

impl SpsInfo {
    /// FrameHeightInMbs (§7.4.2.1.1).
    pub fn frame_height_in_mbs(&self) -> u32 {
        self.height_in_map_units * if self.frame_mbs_only { 1 } else { 2 }
    }
}

/// Reads bits MSB first from an RBSP (emulation prevention bytes removed).
pub(crate) struct BitReader {
    data: Vec<u8>,
    pos: usize,
}

impl BitReader {
    pub(crate) fn new(nal: &[u8]) -> Self {
        // §7.4.1: drop the 0x03 of every 0x000003.
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb (§9.1).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 { k.div_ceil(2) as i32 } else { -((k / 2) as i32) })
    }
}

/// Parses an SPS NAL unit (with its one-byte header). `None` if it is not a valid SPS.
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let mut r = BitReader::new(&nal[1..]);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let seq_parameter_set_id = r.ue()?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let (mut bit_depth_luma, mut bit_depth_chroma) = (8, 8);
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        bit_depth_luma = 8 + r.ue()?;
        bit_depth_chroma = 8 + r.ue()?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            // seq_scaling_matrix_present_flag: skip the scaling lists (§7.3.2.1.1.1).
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    let log2_max_frame_num = 4 + r.ue()?;
    let pic_order_cnt_type = r.ue()?;
    let mut log2_max_pic_order_cnt_lsb = 0;
    let mut delta_pic_order_always_zero = false;
    match pic_order_cnt_type {
        0 => {
            log2_max_pic_order_cnt_lsb = 4 + r.ue()?;
        }
        1 => {
            delta_pic_order_always_zero = r.bit()? == 1;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            for _ in 0..cycle.min(255) {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    if log2_max_frame_num > 16 || (pic_order_cnt_type == 0 && log2_max_pic_order_cnt_lsb > 16) {
        return None;
    }
    let max_num_ref_frames = r.ue()?;
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1).filter(|&w| w <= 1024)?;
    let height_map_units = r.ue()?.checked_add(1).filter(|&h| h <= 1024)?;
    let frame_mbs_only = r.bit()?;
    let mb_adaptive_frame_field = frame_mbs_only == 0 && r.bit()? == 1;
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        crop_left = r.ue()?;
        crop_right = r.ue()?;
        crop_top = r.ue()?;
        crop_bottom = r.ue()?;
    }
    // §7.4.2.1.1: crop units depend on the chroma format.
    let (crop_x, crop_y) = match chroma_format_idc {
        0 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (crop_left + crop_right))?;
    let height = (height_map_units * 16 * (2 - frame_mbs_only)).checked_sub(crop_y * (crop_top + crop_bottom))?;
    Some(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        width,
        height,
        seq_parameter_set_id,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        log2_max_frame_num,
        pic_order_cnt_type,
        log2_max_pic_order_cnt_lsb,
        delta_pic_order_always_zero,
        max_num_ref_frames,
        width_in_mbs: width_mbs,
        height_in_map_units: height_map_units,
        frame_mbs_only: frame_mbs_only == 1,
        mb_adaptive_frame_field,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_size_of_real_encoders_sps() {
        // libx264 baseline 320x180 (ffmpeg 9, from tests/data/ffmpeg9_libx264_baseline_320x180.rtp).
        let x264 = [
            0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0x9f, 0x9f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
            0x03, 0x03, 0xc8, 0xf1, 0x42, 0xa4, 0x80,
        ];
        let info = parse_sps(&x264).unwrap();
        assert_eq!((info.profile_idc, info.level_idc), (0x42, 0x0d));
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!((info.width_in_mbs, info.frame_height_in_mbs()), (20, 12));
        assert_eq!((info.chroma_format_idc, info.bit_depth_luma, info.frame_mbs_only), (1, 8, true));
        // x264 without B-frames: picture order from frame_num (type 2).
        assert_eq!((info.log2_max_frame_num, info.pic_order_cnt_type, info.max_num_ref_frames), (4, 2, 3));
    }

    #[test]
    fn refuses_what_is_not_an_sps() {
        assert_eq!(parse_sps(&[0x68, 0xce]), None);
        assert_eq!(parse_sps(&[0x67, 0x42]), None);
        assert_eq!(parse_sps(&[]), None);
    }
}
