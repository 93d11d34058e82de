// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) clients for townhall's pages.
// By default the offer is sent once ICE gathering completes (or after 2 s), which every WHIP
// server accepts. With { trickle: true } the offer goes at once and candidates follow in
// PATCH requests (RFC 9725 §4.3.1). `restartIce()` performs an ICE restart over PATCH
// (§4.3.2). The session URL from Location is used to PATCH and to DELETE on stop.

async function gatheringComplete(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
}

async function problemText(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.title}: ${body.detail}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

const sdpLine = (sdp, prefix) => sdp.split('\r\n').find((l) => l.startsWith(prefix))?.slice(prefix.length);

// The session: its resource URL, ETag, and what PATCH needs.
class Session {
  constructor(pc, resource, etag, token) {
    Object.assign(this, { pc, resource, etag, token, pending: [], patching: Promise.resolve() });
  }

  headers(extra = {}) {
    const headers = { 'Content-Type': 'application/trickle-ice-sdpfrag', ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  // An SDP fragment (RFC 8840) with our credentials and `candidates`.
  fragment(candidates, withEnd) {
    const local = this.pc.localDescription.sdp;
    const mid = this.pc.getTransceivers()[0]?.mid ?? '0';
    let body = `a=ice-ufrag:${sdpLine(local, 'a=ice-ufrag:')}\r\na=ice-pwd:${sdpLine(local, 'a=ice-pwd:')}\r\n`;
    body += `m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:${mid}\r\n`;
    for (const c of candidates) body += `a=${c}\r\n`;
    if (withEnd) body += 'a=end-of-candidates\r\n';
    return body;
  }

  // Trickles candidates gathered after the POST.
  trickle(candidate) {
    this.pending.push(candidate);
    this.patching = this.patching.then(async () => {
      const batch = this.pending.splice(0);
      if (!batch.length) return;
      const response = await fetch(this.resource, { method: 'PATCH', headers: this.headers({ 'If-Match': this.etag }), body: this.fragment(batch, false) });
      if (response.status !== 204) throw new Error(await problemText(response));
    });
    return this.patching;
  }

  // RFC 9725 §4.3.2: new local credentials in a PATCH with If-Match; the answer fragment's
  // credentials and candidates replace the remote ones.
  async restartIce() {
    this.pc.restartIce();
    const offer = await this.pc.createOffer({ iceRestart: true });
    await this.pc.setLocalDescription(offer);
    await gatheringComplete(this.pc);
    const candidates = this.pc.localDescription.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:')).map((l) => l.slice(2));
    const response = await fetch(this.resource, { method: 'PATCH', headers: this.headers({ 'If-Match': this.etag }), body: this.fragment(candidates, true) });
    if (response.status !== 200) throw new Error(await problemText(response));
    this.etag = response.headers.get('ETag') || this.etag;
    const answerFragment = await response.text();
    const ufrag = sdpLine(answerFragment, 'a=ice-ufrag:');
    const pwd = sdpLine(answerFragment, 'a=ice-pwd:');
    const remoteCandidates = answerFragment.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    let sections = this.pc.currentRemoteDescription.sdp.split(/\r\n(?=m=)/);
    sections = sections.map((section, i) => {
      let lines = section.split('\r\n').filter((l) => l && !l.startsWith('a=candidate:') && !l.startsWith('a=end-of-candidates'));
      lines = lines.map((l) => (l.startsWith('a=ice-ufrag:') ? `a=ice-ufrag:${ufrag}` : l.startsWith('a=ice-pwd:') ? `a=ice-pwd:${pwd}` : l));
      if (i > 0) lines.push(...remoteCandidates, 'a=end-of-candidates');
      return lines.join('\r\n');
    });
    await this.pc.setRemoteDescription({ type: 'answer', sdp: `${sections.join('\r\n')}\r\n` });
  }
}

// Offers `pc`'s current transceivers to `url`; returns the Session.
async function negotiate(pc, url, token, { trickle = false } = {}) {
  const early = [];
  let session = null;
  if (trickle) {
    pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate || !event.candidate.candidate) return;
      if (session) session.trickle(event.candidate.candidate); else early.push(event.candidate.candidate);
    });
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (!trickle) await gatheringComplete(pc);
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  // Trickle: the offer as created, before any candidate was gathered.
  const body = trickle ? offer.sdp : pc.localDescription.sdp;
  const response = await fetch(url, { method: 'POST', headers, body });
  if (response.status !== 201) throw new Error(await problemText(response));
  const answer = await response.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const resource = new URL(response.headers.get('Location'), new URL(url, location.href)).toString();
  session = new Session(pc, resource, response.headers.get('ETag'), token);
  for (const candidate of early.splice(0)) session.trickle(candidate);
  return session;
}

// Prefers H.264 where the browser lets us choose (the program needs it).
function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender?.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities('video')?.codecs || [];
  const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264');
  if (h264.length) transceiver.setCodecPreferences(h264);
}

// Publishes `stream` over WHIP. Returns { pc, session, stop() }.
export async function publish(url, stream, token, options = {}) {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  for (const track of stream.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    if (track.kind === 'video') preferH264(t);
  }
  const session = await negotiate(pc, url, token, options);
  return {
    pc,
    session,
    resource: session.resource,
    restartIce: () => session.restartIce(),
    async stop() {
      pc.close();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      await fetch(session.resource, { method: 'DELETE', headers }).catch(() => {});
    },
  };
}

// Plays a WHEP endpoint into a MediaStream. Returns { pc, stream, stop() }.
export async function play(url, token) {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  preferH264(pc.addTransceiver('video', { direction: 'recvonly' }));
  const stream = new MediaStream();
  pc.addEventListener('track', (event) => stream.addTrack(event.track));
  const session = await negotiate(pc, url, token);
  return {
    pc,
    stream,
    session,
    resource: session.resource,
    restartIce: () => session.restartIce(),
    async stop() {
      pc.close();
      await fetch(session.resource, { method: 'DELETE' }).catch(() => {});
    },
  };
}
