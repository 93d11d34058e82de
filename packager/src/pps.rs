//! Just enough of an H.264 picture parameter set (ITU-T H.264 §7.3.2.2) to write a slice
//! header that refers to it: the fields up to `redundant_pic_cnt_present_flag`.

use crate::sps::BitReader;

/// The PPS fields that shape a slice header and the choice of entropy coder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpsInfo {
    pub pic_parameter_set_id: u32,
    pub seq_parameter_set_id: u32,
    /// CABAC (1) or CAVLC (0).
    pub entropy_coding_mode: bool,
    pub bottom_field_pic_order_in_frame_present: bool,
    pub num_slice_groups: u32,
    pub weighted_pred: bool,
    pub deblocking_filter_control_present: bool,
    pub redundant_pic_cnt_present: bool,
}

/// Parses a PPS NAL unit (with its one-byte header). `None` if it is not a valid PPS. With
/// slice groups (FMO) the fields after them are not read (they stay `false`).
pub fn parse_pps(nal: &[u8]) -> Option<PpsInfo> {
    if nal.first()? & 0x1f != 8 {
        return None;
    }
    let mut r = BitReader::new(&nal[1..]);
    let pic_parameter_set_id = r.ue()?;
    let seq_parameter_set_id = r.ue()?;
    if pic_parameter_set_id > 255 || seq_parameter_set_id > 31 {
        return None;
    }
    let entropy_coding_mode = r.bit()? == 1;
    let bottom_field_pic_order_in_frame_present = r.bit()? == 1;
    let num_slice_groups = r.ue()?.checked_add(1).filter(|&n| n <= 8)?;
    let mut info = PpsInfo {
        pic_parameter_set_id,
        seq_parameter_set_id,
        entropy_coding_mode,
        bottom_field_pic_order_in_frame_present,
        num_slice_groups,
        weighted_pred: false,
        deblocking_filter_control_present: false,
        redundant_pic_cnt_present: false,
    };
    if num_slice_groups > 1 {
        return Some(info);
    }
    r.ue()?; // num_ref_idx_l0_default_active_minus1
    r.ue()?; // num_ref_idx_l1_default_active_minus1
    info.weighted_pred = r.bit()? == 1;
    r.bits(2)?; // weighted_bipred_idc
    r.se()?; // pic_init_qp_minus26
    r.se()?; // pic_init_qs_minus26
    r.se()?; // chroma_qp_index_offset
    info.deblocking_filter_control_present = r.bit()? == 1;
    r.bit()?; // constrained_intra_pred_flag
    info.redundant_pic_cnt_present = r.bit()? == 1;
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libx264_baseline_pps() {
        // libx264 baseline (CAVLC, deblocking control present).
        let pps = parse_pps(&[0x68, 0xcb, 0x83, 0xcb, 0x20]).unwrap();
        assert_eq!((pps.pic_parameter_set_id, pps.seq_parameter_set_id), (0, 0));
        assert!(!pps.entropy_coding_mode);
        assert!(pps.deblocking_filter_control_present);
        assert_eq!(pps.num_slice_groups, 1);
    }

    #[test]
    fn refuses_what_is_not_a_pps() {
        assert_eq!(parse_pps(&[0x67, 0xce]), None);
        assert_eq!(parse_pps(&[0x68]), None);
        assert_eq!(parse_pps(&[]), None);
    }
}
