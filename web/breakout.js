// The breakout view (issue 6, breakout rooms; src/http/breakouts.rs documents the protocol): a
// small stage and a chat for one breakout room. Members publish camera and microphone over
// WHIP with the presenter token of their `breakout_assigned` and watch every room-mate over
// WHEP (retried until the room-mate is live); the room's chat rides on its own WebSocket; a
// countdown shows when everyone goes back. A host visiting (studio) opens it with the host
// token and no camera. Plain DOM, usable at phone size (tiles wrap, chat below).
//
// openBreakout(container, {breakout, token, whipUrl, whepUrl, me, camera, onLeave}) → {el, close()}
// window.townhallBreakout: {id, published, frames: {presenter: n}, chat()} for tests.
import { publish, play } from './whip.js';
import { RoomState } from './room-state.js';
import { RoomSocket } from './room-socket.js';
import { chatPanel, reporter, h } from './panels.js';

const RETRY_MS = 3000;
const two = (n) => String(n).padStart(2, '0');

export function openBreakout(container, { breakout, token, whipUrl, whepUrl, me = null, camera = true, onLeave }) {
  const state = new RoomState();
  const errorLine = h('div', { class: 'error', role: 'alert' });
  const report = reporter(errorLine);
  const hook = { id: breakout.id, published: false, frames: {}, chat: () => state.chatList().map((m) => m.text) };
  window.townhallBreakout = hook;
  let closed = false;
  let socket = null;
  const send = (command) => (socket ? socket.send(command) : Promise.reject(new Error('Not connected')));
  const chat = chatPanel({ state, send, report, loadEarlier: () => {} });
  const countdown = h('span', { class: 'countdown', 'aria-live': 'off' });
  const tiles = h('div', { class: 'tiles' });
  const leave = h('button', { class: 'small', onclick: () => onLeave?.() }, me ? 'Leave' : 'Close');
  const title = h('h2', {}, breakout.name, ' ', countdown, ' ', leave);
  const el = h('section', { class: 'breakout card', 'data-breakout': breakout.id }, title, tiles, errorLine, chat.el);
  container.append(el);

  // --- the countdown ----------------------------------------------------------------------
  let endsAt = breakout.ends_at;
  const tick = () => {
    const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    countdown.textContent = `· back in ${Math.floor(left / 60)}:${two(left % 60)}`;
    countdown.classList.toggle('closing', left <= 30);
  };
  tick();
  const ticker = setInterval(tick, 1000);

  // --- media: my camera, then every room-mate -----------------------------------------------
  const sessions = [];
  const tile = (label, muted) => {
    const video = h('video', { autoplay: true, playsInline: true, muted });
    const t = h('figure', { class: 'tile' }, video, h('figcaption', {}, label));
    tiles.append(t);
    return { t, video };
  };
  let localStream = null;
  async function startCamera() {
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
      const { video } = tile(`${me?.name ?? 'Me'} (you)`, true);
      video.srcObject = localStream;
      const session = await publish(whipUrl, localStream, token);
      if (closed) { session.stop(); return; }
      sessions.push(session);
      hook.published = true;
    } catch (e) {
      errorLine.textContent = `Camera: ${e.message}`;
    }
  }
  const others = (breakout.participants ?? []).filter((p) => p.id !== me?.participant_id);
  for (const mate of others) {
    const { video } = tile(mate.name || mate.id, false);
    hook.frames[mate.id] = 0;
    if (video.requestVideoFrameCallback) {
      const onFrame = () => { hook.frames[mate.id] += 1; video.requestVideoFrameCallback(onFrame); };
      video.requestVideoFrameCallback(onFrame);
    }
    (async function watch() {
      while (!closed) {
        try {
          const session = await play(`${whepUrl}/${encodeURIComponent(mate.id)}`, token);
          if (closed) { session.stop(); return; }
          sessions.push(session);
          video.srcObject = session.stream;
          // Back to retrying when the room-mate leaves or the connection fails.
          await new Promise((resolve) => session.pc.addEventListener('connectionstatechange', () => {
            if (['failed', 'closed', 'disconnected'].includes(session.pc.connectionState)) resolve();
          }));
          session.stop();
        } catch { /* not live yet */ }
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    })();
  }
  if (camera) startCamera();
  else {
    el.querySelector('h2').append(h('button', { class: 'small', onclick: (e) => { e.target.remove(); startCamera(); } }, 'Camera on'));
  }

  // --- the room's chat ------------------------------------------------------------------------
  socket = new RoomSocket(breakout.id, {
    token,
    onWelcome(w) { state.me = w.participant; if (w.snapshot) state.applySnapshot(w.snapshot); chat.render(); },
    onEvent(e) { state.apply(e); chat.render(); },
    onBreakout(m) {
      if (m.type === 'breakout_closing') { endsAt = m.ends_at; tick(); }
      if (m.type === 'breakout_ended') onLeave?.();
    },
  });
  socket.connect();

  function close() {
    if (closed) return;
    closed = true;
    clearInterval(ticker);
    socket.close();
    for (const s of sessions) s.stop();
    for (const track of localStream?.getTracks() ?? []) track.stop();
    el.remove();
    if (window.townhallBreakout === hook) window.townhallBreakout = null;
  }
  return { el, close };
}
