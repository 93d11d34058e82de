// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) clients for townhall's pages.
// Non-trickle: the offer is sent once ICE gathering completes (or after 2 s), which every
// WHIP server accepts; the session URL from Location is used to DELETE on stop.

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

// Offers `pc`'s current transceivers to `url`; returns the session resource URL.
async function negotiate(pc, url, token) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await gatheringComplete(pc);
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (response.status !== 201) throw new Error(await problemText(response));
  const answer = await response.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return new URL(response.headers.get('Location'), new URL(url, location.href)).toString();
}

// Prefers H.264 where the browser lets us choose (the program needs it).
function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender?.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities('video')?.codecs || [];
  const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264');
  if (h264.length) transceiver.setCodecPreferences(h264);
}

// Publishes `stream` over WHIP. Returns { pc, stop() }.
export async function publish(url, stream, token) {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  for (const track of stream.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    if (track.kind === 'video') preferH264(t);
  }
  const resource = await negotiate(pc, url, token);
  return {
    pc,
    resource,
    async stop() {
      pc.close();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      await fetch(resource, { method: 'DELETE', headers }).catch(() => {});
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
  const resource = await negotiate(pc, url, token);
  return {
    pc,
    stream,
    resource,
    async stop() {
      pc.close();
      await fetch(resource, { method: 'DELETE' }).catch(() => {});
    },
  };
}
