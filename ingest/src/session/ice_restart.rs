//! PATCH on a session (RFC 9725 §4.3): trickled candidates (RFC 8840) and ICE restarts (RFC
//! 8445 §9) with the new ufrag/pwd and candidates answered as an SDP fragment.

use super::*;

impl Driver {
    pub(super) fn on_patch(&mut self, fragment: SdpFragment, allow_restart: bool) -> Result<Option<String>> {
        let current_remote_ufrag = self.pc.remote_description().and_then(|d| sdp::ice_ufrag(&d.sdp).map(str::to_owned));
        let restart = matches!((&fragment.ice_ufrag, &current_remote_ufrag), (Some(new), Some(old)) if new != old);
        let mut reply = None;
        if restart && !allow_restart {
            return Err(Error::RestartNeedsEtag);
        }
        if restart {
            reply = Some(self.restart_ice(&fragment)?);
        }
        for (mid, candidate) in fragment.candidates {
            if self.ctx.loopback_only && !sdp::candidate_is_loopback(&candidate) {
                continue;
            }
            self.pc
                .add_remote_candidate(RTCIceCandidateInit {
                    candidate,
                    sdp_mid: mid,
                    sdp_mline_index: None,
                    username_fragment: fragment.ice_ufrag.clone(),
                    ..Default::default()
                })
                .map_err(|e| Error::UnusableFragment(format!("candidate refused: {e}")))?;
        }
        Ok(reply)
    }

    /// RFC 9725 §4.4.2: apply the client's new ICE credentials and return ours.
    pub(super) fn restart_ice(&mut self, fragment: &SdpFragment) -> Result<String> {
        let (Some(ufrag), Some(pwd)) = (&fragment.ice_ufrag, &fragment.ice_pwd) else {
            return Err(Error::MalformedFragment("an ICE restart needs a=ice-ufrag and a=ice-pwd".into()));
        };
        let old_local = self.pc.local_description().map(|d| d.sdp).unwrap_or_default();
        let old_local_ufrag = sdp::ice_ufrag(&old_local).map(str::to_owned);
        let remote = self
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or_else(|| Error::WebRtc("no remote description".into()))?;
        let offer: String = remote
            .lines()
            .filter(|l| !l.starts_with("a=candidate") && !l.starts_with("a=end-of-candidates"))
            .map(|l| {
                if l.starts_with("a=ice-ufrag:") {
                    format!("a=ice-ufrag:{ufrag}")
                } else if l.starts_with("a=ice-pwd:") {
                    format!("a=ice-pwd:{pwd}")
                } else {
                    l.trim_end_matches('\r').to_owned()
                }
            })
            .map(|l| l + "\r\n")
            .collect();
        let now = Instant::now();
        let description = RTCSessionDescription::offer(offer).map_err(|e| Error::WebRtc(e.to_string()))?;
        self.pc.set_remote_description(now, description)?;
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(now, answer)?;
        let local = self.pc.local_description().map(|d| d.sdp).unwrap_or_default();
        let new_ufrag = sdp::ice_ufrag(&local).unwrap_or_default().to_owned();
        let new_pwd = local
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-pwd:"))
            .unwrap_or_default()
            .to_owned();
        if old_local_ufrag.as_deref() != Some(new_ufrag.as_str()) {
            // Checks after the restart name the new ufrag; learned addresses keep routing.
            self.ctx.router.add_ufrag(&new_ufrag, &self.ctx.id, self.ctx.datagram_tx.clone());
        }
        let mut frag = format!("a=ice-ufrag:{new_ufrag}\r\na=ice-pwd:{new_pwd}\r\n");
        for line in local.lines().filter(|l| l.starts_with("a=candidate:")) {
            frag.push_str(line.trim_end_matches('\r'));
            frag.push_str("\r\n");
        }
        frag.push_str("a=end-of-candidates\r\n");
        Ok(frag)
    }
}
