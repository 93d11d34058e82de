// The watch page: the LL-HLS program (hls.js in low-latency mode where Media Source Extensions
// exist, the browser's own HLS on Safari/iOS) and the interaction panels, released on the
// player's clock (ARCHITECTURE.md, "Program time"): an event shows when the player's
// playingDate reaches its `at`.
//
// Live: events come by the WebSocket, EXT-X-DATERANGE and ID3 `emsg`; `?source=ws|daterange|emsg`
// keeps one path (a test hook; by default all three, de-duplicated by seq). On joining, the
// snapshot of the `welcome` is shown at once (it may be up to the player's latency ahead); what
// happens after it waits for the player. Replay (`?replay`): the log from the REST API, shown as
// of the replay's playingDate, recomputed when seeking back.
//
// window.townhallPlayer: hls.js's view (latency, playingDate, errors) for tests.
// window.townhallInteraction: {shown, state, clock(), seekToDate(ms), socket}; each release also fires
// a `townhall:shown` event on document, synchronously, with the record as detail.
import { RoomState } from './room-state.js';
import { RoomSocket } from './room-socket.js';
import { Timeline } from './timeline.js';
import { DateRangeSource, EmsgSource } from './inband.js';
import { chatPanel, qaPanel, pollPanel, handPanel, reporter, h } from './panels.js';
import { chapterBar, loadReplay } from './replay.js';
import { waitingScreen } from './lifecycle.js';
import { stageInvite } from './stage-invite.js';
import { openBreakout } from './breakout.js';

const $ = (id) => document.getElementById(id);
const room = document.body.dataset.room;
const params = new URLSearchParams(location.search);
const replay = params.has('replay');
const source = params.get('source') || 'all';
const uses = (path) => source === 'all' || source === path;
const src = replay ? `/hls/${room}/replay.m3u8` : `/hls/${room}/index.m3u8`;
const video = $('video');
let hls = null;

window.townhallPlayer = { errors: [], fatal: null, blockingReloads: 0, partLoads: 0, latency: null, playingDate: null, ended: false };
const player = window.townhallPlayer;

// The player's playingDate in ms (program time of what is on screen), or null.
function clock() {
  if (hls) return hls.playingDate ? hls.playingDate.getTime() : null;
  const start = video.getStartDate?.();
  if (start && Number.isFinite(start.getTime()) && video.readyState >= 2) return start.getTime() + video.currentTime * 1000;
  return null;
}

// Seeks to a program time (a chapter's start, in the replay).
function seekToDate(ms) {
  const fragments = hls?.levels?.[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details?.fragments ?? [];
  const frag = [...fragments].reverse().find((f) => f.programDateTime != null && f.programDateTime <= ms) ?? fragments[0];
  if (frag) video.currentTime = frag.start + Math.max(0, ms - frag.programDateTime) / 1000;
  else if (!hls && video.getStartDate) video.currentTime = (ms - video.getStartDate().getTime()) / 1000;
}

// --- the interaction ---------------------------------------------------------------------
const state = new RoomState();
const errorLine = h('div', { class: 'error', role: 'alert' });
const report = reporter(errorLine);
let socket = null;
const send = (command) => (socket ? socket.send(command) : Promise.reject(new Error('Not connected')));
const panels = [
  pollPanel({ state, send, report }),
  handPanel({ state, send, report }),
  qaPanel({ state, send, report }),
  chatPanel({ state, send, report, loadEarlier }),
];
// The stage invitation: its card under the player; once off the stage, the hand panel no
// longer says "invited".
const stage = stageInvite({ room, send, report, onChange(now) {
  if (now === 'watching' && state.me) state.invitations = state.invitations.filter((i) => i.participant_id !== state.me.participant_id);
  render();
} });
$('invitation').replaceWith(stage.el);
let replayEvents = [];
const chapters = chapterBar({ state, seekToDate, replay, all: () => replayEvents.filter((e) => e.type === 'chapter_started') });
$('chapter').replaceWith(chapters.el);
$('panels').append(errorLine, ...panels.map((p) => p.el));
if (replay) $('panels').classList.add('read-only');
let dirty = true;
const render = () => { dirty = true; };
function draw() {
  if (!dirty) return;
  dirty = false;
  for (const p of panels) p.render();
  chapters.render();
}

const announce = (record) => document.dispatchEvent(new CustomEvent('townhall:shown', { detail: record }));
const timeline = new Timeline({
  clock,
  release(item) {
    if (item.type === 'poll_results') state.applyResults(item); else state.apply(item);
    render();
    draw();
  },
  complete(item) { state.apply(item); render(); },
});
const recordShown = timeline.record.bind(timeline);
timeline.record = (item, path, at) => { recordShown(item, path, at); announce(timeline.shown[timeline.shown.length - 1]); };

async function loadEarlier() {
  const oldest = state.chatList()[0]?.id;
  const headers = socket?.token ? { Authorization: `Bearer ${socket.token}` } : {};
  const r = await fetch(`/api/rooms/${room}/chat?limit=50${oldest ? `&before=${oldest}` : ''}`, { headers });
  if (r.ok) { state.addHistory(await r.json()); render(); }
}

// Keys of what a snapshot lists, so that in-band copies of it are not shown again.
function snapshotKeys(s) {
  const keys = [];
  for (const p of s.polls ?? []) {
    if (p.state !== 'draft') keys.push(`poll_opened:${p.id}`);
    if (p.state === 'closed') keys.push(`poll_closed:${p.id}`);
  }
  for (const c of s.chapters ?? []) keys.push(`chapter_started:${c.id}`);
  return keys;
}

// The player starts once the room lets this attendee in (the first `welcome`).
const waitingRoom = waitingScreen($('waiting'));
let letIn;
const admitted = new Promise((resolve) => { letIn = resolve; });
// Watch time for the room's report: every `heartbeat_interval_s`, whether the video plays.
let heartbeats = null;
function startHeartbeats(intervalS) {
  if (heartbeats || replay || !(intervalS > 0)) return;
  const beat = () => socket?.heartbeat(!video.paused && !video.ended && video.readyState > 2);
  heartbeats = setInterval(beat, intervalS * 1000);
  video.addEventListener('playing', beat, { once: true });
}

function connectSocket() {
  socket = new RoomSocket(room, {
    // A registrant's personal join link carries its token (`/watch/{room}?token=…`).
    token: params.get('token'),
    name: params.get('name'),
    onStatus: (text, ok) => { $('connection').textContent = text; $('connection').className = ok ? 'ok' : 'muted'; },
    onWaiting(w) {
      window.townhallInteraction.waiting = w.reason;
      $('watch-layout').hidden = true;
      waitingRoom.show(w);
    },
    onNotice(m) {
      stage.notice(m);
      if (m.type === 'phase' && m.phase === 'ended') $('status').textContent = 'The event has ended.';
    },
    onWelcome(w) {
      window.townhallInteraction.waiting = null;
      waitingRoom.hide();
      $('watch-layout').hidden = false;
      letIn();
      state.me = w.participant;
      startHeartbeats(w.heartbeat_interval_s);
      if (uses('ws') && w.snapshot && !replay) {
        state.applySnapshot(w.snapshot);
        timeline.baseline(w.snapshot.seq, snapshotKeys(w.snapshot));
      }
      render();
    },
    onEvent(e) { if (uses('ws') && !replay) timeline.push(e, 'ws'); },
    onResults(r) { if (uses('ws') && !replay) timeline.push(r, 'ws'); },
    // The host invited this attendee to the stage: stage-invite.js asks, then publishes.
    onInvitation(invitation) { window.townhallInvitation = invitation; stage.invited(invitation); },
    onBreakout: breakoutMove,
    onRemoved: removed,
  });
  socket.connect();
  window.townhallInteraction.socket = socket;
}

// Removed by the host (or refused): no player, no panels, no heartbeats; said on the page.
function removed(reason) {
  window.townhallInteraction.removed = reason;
  clearInterval(heartbeats);
  breakout?.view.close();
  breakout = null;
  hls?.destroy();
  hls = null;
  video.pause();
  video.removeAttribute('src');
  $('watch-layout').hidden = true;
  waitingRoom.removed(reason);
}

// --- breakout rooms: the host moves this attendee to a small room, and back -----------------
let breakout = null;
function breakoutMove(m) {
  if (m.type === 'breakout_assigned' && breakout?.id !== m.breakout.id) {
    breakout?.view.close();
    video.pause();
    document.querySelector('.layout').hidden = true;
    const view = openBreakout(document.querySelector('main'), {
      breakout: m.breakout, token: m.token, whipUrl: m.whip_url, whepUrl: m.whep_url, me: state.me,
      onLeave: () => backToProgram(),
    });
    breakout = { id: m.breakout.id, view };
  } else if (m.type === 'breakout_ended') {
    backToProgram();
  }
}
function backToProgram() {
  breakout?.view.close();
  breakout = null;
  document.querySelector('.layout').hidden = false;
  video.play().catch(() => {});
}

// --- the player ------------------------------------------------------------------------
async function waitForProgram() {
  for (;;) {
    const response = await fetch(src, { cache: 'no-store' }).catch(() => null);
    if (response?.ok) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function startPlayer() {
  if (window.Hls && Hls.isSupported()) {
    // Low-latency mode targets PART-HOLD-BACK behind the edge. A stall at start-up must not
    // push that target up by a whole second (hls.js's default), and the player may play a
    // little faster to get back to it.
    hls = new Hls({ lowLatencyMode: !replay, backBufferLength: 30, liveSyncOnStallIncrease: 0.1, maxLiveSyncPlaybackRate: 1.25 });
    window.townhallHls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => {
      player.errors.push(`${data.type}/${data.details}${data.fatal ? ' (fatal)' : ''}`);
      if (data.fatal) player.fatal = data.details;
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
      if (/_HLS_msn=/.test(data.details.url || data.networkDetails?.responseURL || '')) player.blockingReloads += 1;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, data) => { if (data.part) player.partLoads += 1; });
    if (!replay && uses('daterange')) {
      const ranges = new DateRangeSource((e, path) => timeline.push(e, path));
      hls.on(Hls.Events.LEVEL_UPDATED, (_, data) => ranges.update(data.details.dateRanges));
    }
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
  } else {
    $('status').textContent = 'This browser cannot play HLS.';
    return;
  }
  video.addEventListener('ended', () => { player.ended = true; });
  setInterval(() => {
    player.latency = hls?.latency ?? null;
    player.playingDate = clock();
    player.currentTime = video.currentTime;
    const latency = Number.isFinite(hls?.latency) ? ` · ${hls.latency.toFixed(2)} s behind live` : '';
    $('status').textContent = replay ? `Replay · ${video.currentTime.toFixed(1)} s` : `Live${latency}`;
  }, 250);
}

// Releases what is due at every animation frame (and every 100 ms: rAF stops in background tabs).
let replayer = null;
const emsg = !replay && uses('emsg') ? new EmsgSource(video, (e, path) => timeline.push(e, path)) : null;
function tick() {
  emsg?.scan();
  if (replay) replayer?.tick(); else timeline.tick();
  draw();
}
const frame = () => { tick(); requestAnimationFrame(frame); };
requestAnimationFrame(frame);
setInterval(tick, 100);

window.townhallInteraction = { shown: timeline.shown, state, source, replay, clock, seekToDate };
if (replay) {
  replayer = await loadReplay({ room, state, clock, render, record: (item, at) => timeline.record(item, 'replay', at) });
  replayEvents = replayer.events;
  window.townhallInteraction.events = replayer.events;
  $('connection').textContent = 'Replay';
} else {
  connectSocket();
  await admitted;
}
await waitForProgram();
startPlayer();
