// The studio: the host's page. The host token comes from the link (`#token=…`, never sent in a
// URL to the server) or is pasted. It shows the stage in real time (WHEP, as the stage page) and
// the moderator side of the interaction, applied as soon as it arrives (no player clock: the
// host sees the stage live): who is on stage (put on air, mute, remove), Q&A moderation, the poll builder with live results, the hand
// queue, chat moderation, chapters and the export of unanswered questions, and breakout rooms.
//
// window.townhallStudio: {connected, summary()} for tests.
import { play } from './whip.js';
import { RoomState } from './room-state.js';
import { RoomSocket } from './room-socket.js';
import { chatPanel, qaPanel, results, reporter, h } from './panels.js';
import { eventPanel } from './lifecycle.js';
import { invitationRegistry, takeOff, presenterLabel, liveCounts } from './studio-stage.js';
import { breakoutControls } from './breakout-controls.js';

const $ = (id) => document.getElementById(id);
const room = document.body.dataset.room;
const fragment = new URLSearchParams(location.hash.slice(1));
const state = new RoomState();
const registry = invitationRegistry();
const errorLine = h('div', { class: 'error', role: 'alert' });
const report = reporter(errorLine);
let socket = null;
const send = (command) => (socket ? socket.send(command) : Promise.reject(new Error('No host token yet')));
window.townhallFrames = 0;
window.townhallStudio = {
  connected: false,
  summary: () => ({
    role: state.me?.role,
    questions: state.questionList({ withDismissed: true }).map((q) => ({ id: q.id, status: q.status, votes: q.votes })),
    polls: state.pollList().map((p) => ({ id: p.id, state: p.state, counts: p.counts, voters: p.voters })),
    hands: [...state.hands.keys()],
    chapters: state.chapterList().map((c) => c.title),
    chat: state.chatList().length,
    pinned: state.pinned?.id ?? null,
  }),
};

// --- the stage ---------------------------------------------------------------------------
let session = null;
async function playStage() {
  try {
    if (session) await session.stop();
    const presenter = $('presenter').value.trim();
    // With the host's token: before the room is live only hosts and presenters watch.
    session = await play(presenter ? `/whep/${room}/${encodeURIComponent(presenter)}` : `/whep/${room}`, hostToken());
    $('video').srcObject = session.stream;
  } catch (e) {
    $('stage-status').textContent = `Could not play: ${e.message}`;
  }
}
const video = $('video');
if (video.requestVideoFrameCallback) {
  const onFrame = () => { window.townhallFrames += 1; video.requestVideoFrameCallback(onFrame); };
  video.requestVideoFrameCallback(onFrame);
}
setInterval(() => { if (session) $('stage-status').textContent = `Stage: ${session.pc.connectionState}`; }, 1000);
$('play').onclick = playStage;

// --- the poll builder and the polls ------------------------------------------------------
function pollBuilder() {
  const question = h('input', { placeholder: 'Question', maxLength: 300, 'aria-label': 'Poll question' });
  const options = h('div', { class: 'options' });
  const addOption = (value = '') => {
    if (options.children.length >= 10) return;
    const input = h('input', { placeholder: `Option ${options.children.length + 1}`, maxLength: 200, value });
    options.append(h('div', { class: 'row' }, input, h('button', { type: 'button', class: 'small', title: 'Remove', onclick: (e) => {
      if (options.children.length > 2) e.target.parentElement.remove();
    } }, '×')));
  };
  addOption(); addOption();
  const multiple = h('input', { type: 'checkbox' });
  const allowChange = h('input', { type: 'checkbox', checked: true });
  const create = async (open) => {
    const texts = [...options.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
    const ack = await report(send({ type: 'poll_create', question: question.value.trim(), options: texts, multiple: multiple.checked, allow_change: allowChange.checked }));
    question.value = '';
    options.replaceChildren(); addOption(); addOption();
    if (open && ack.seqs.length) {
      const created = await eventOf(ack.seqs[0]);
      await report(send({ type: 'poll_open', poll: created.id }));
    }
  };
  const form = h('form', { class: 'poll-builder', onsubmit: (e) => { e.preventDefault(); create(true).catch(() => {}); } },
    question, options,
    h('div', { class: 'row' }, h('button', { type: 'button', class: 'small', onclick: () => addOption() }, '+ option'),
      h('label', { class: 'inline' }, multiple, ' multiple choice'), h('label', { class: 'inline' }, allowChange, ' votes may change')),
    h('div', { class: 'row' }, h('button', { type: 'button', onclick: () => create(false).catch(() => {}) }, 'Save draft'),
      h('button', { class: 'primary', type: 'submit' }, 'Create and open')));
  const list = h('ol', { class: 'poll-list' });
  const el = h('section', { class: 'card', id: 'polls' }, h('h2', {}, 'Polls'), form, list);
  const render = () => {
    list.replaceChildren(...state.pollList().map((p) => h('li', { 'data-id': p.id, 'data-state': p.state },
      h('div', { class: 'row' }, h('strong', {}, p.question), h('span', { class: 'tag' }, p.state),
        p.state === 'draft' ? h('button', { class: 'small primary', onclick: () => report(send({ type: 'poll_open', poll: p.id })) }, 'Open') : null,
        p.state === 'open' ? h('button', { class: 'small danger', onclick: () => report(send({ type: 'poll_close', poll: p.id })) }, 'Close') : null),
      results(p), h('p', { class: 'muted' }, `${p.voters} voter${p.voters === 1 ? '' : 's'}${p.multiple ? ' · multiple choice' : ''}`))));
  };
  return { el, render };
}

// --- the hand queue ----------------------------------------------------------------------
function handQueue() {
  const list = h('ol', { class: 'hand-list' });
  const clearAll = h('button', { class: 'small', onclick: () => report(send({ type: 'hand_clear' })) }, 'Clear all');
  const el = h('section', { class: 'card', id: 'hand-queue' }, h('h2', {}, 'Raised hands ', clearAll), list);
  const render = () => {
    const hands = [...state.hands.values()];
    clearAll.disabled = !hands.length;
    const invited = new Set(state.invitations.map((i) => i.participant_id));
    list.replaceChildren(...(hands.length ? hands.map((hand, i) => h('li', { 'data-id': hand.participant_id, class: 'row' },
      `${i + 1}. `, h('span', { class: 'text' }, hand.name || hand.participant_id), invited.has(hand.participant_id) ? h('span', { class: 'tag' }, 'invited') : null,
      h('button', { class: 'small primary', onclick: () => report(send({ type: 'hand_invite', participant: hand.participant_id })) }, 'Invite'),
      h('button', { class: 'small', onclick: () => report(send({ type: 'hand_clear', participant: hand.participant_id })) }, 'Clear'),
      h('button', { class: 'small danger', 'data-remove': hand.participant_id, onclick: () => removeParticipant({ participant_id: hand.participant_id, name: hand.name }) }, 'Remove')))
      : [h('li', { class: 'muted' }, 'No hands raised.')]));
  };
  return { el, render };
}

// --- the stage list: who is live, on air, muted, video off; put on air, mute, video, remove --
function stageList() {
  const list = h('ul', { class: 'stage-list' });
  const el = h('section', { class: 'card', id: 'stage-list' }, h('h2', {}, 'On stage'), list);
  let presenters = [];
  let program = null;
  const refresh = async () => {
    if (!socket) return;
    try {
      const view = await api('GET', '');
      presenters = view.presenters;
      program = view.program;
      render();
      self.onRefresh?.();
    } catch { /* not a host token yet: the error line says so */ }
  };
  const act = (promise) => report(promise.then(refresh));
  const render = () => {
    list.replaceChildren(...(presenters.length ? presenters.map((p) => h('li', { class: 'row', 'data-presenter': p.name },
      h('span', { class: 'text' }, presenterLabel(registry, p.name)), p.name === program ? h('span', { class: 'tag' }, 'on air') : null,
      p.muted ? h('span', { class: 'tag' }, 'muted') : null,
      p.video_off ? h('span', { class: 'tag' }, 'video off') : null,
      h('button', { class: 'small', disabled: p.name === program, onclick: () => act(api('POST', '/program', { publisher: p.name })) }, 'Put on air'),
      h('button', { class: 'small', onclick: () => act(api('POST', `/presenters/${encodeURIComponent(p.name)}/audio`, { muted: !p.muted })) }, p.muted ? 'Unmute' : 'Mute'),
      h('button', { class: 'small', onclick: () => act(api('POST', `/presenters/${encodeURIComponent(p.name)}/video`, { off: !p.video_off })) }, p.video_off ? 'Video on' : 'Video off'),
      h('button', { class: 'small danger', onclick: () => act(takeOff(api, registry, p.name)) }, 'Remove')))
      : [h('li', { class: 'muted' }, 'Nobody is publishing.')]));
  };
  setInterval(refresh, 2000);
  const self = { el, render, refresh, api, view: () => ({ presenters, program }), onRefresh: null };
  return self;
}

// --- chapters and the export -------------------------------------------------------------
function chaptersAndExport() {
  const title = h('input', { placeholder: 'Chapter title', maxLength: 120, 'aria-label': 'Chapter title' });
  const list = h('ol', { class: 'chapter-list' });
  const exportButton = h('button', { onclick: () => downloadUnanswered().catch((e) => { errorLine.textContent = e.message; }) }, 'Export unanswered questions (CSV)');
  const el = h('section', { class: 'card', id: 'chapters' }, h('h2', {}, 'Chapters'),
    h('form', { class: 'row', onsubmit: (e) => {
      e.preventDefault();
      if (title.value.trim()) report(send({ type: 'chapter_start', title: title.value.trim() })).then(() => { title.value = ''; }, () => {});
    } }, title, h('button', { class: 'primary', type: 'submit' }, 'Start chapter')), list, exportButton);
  const render = () => {
    list.replaceChildren(...state.chapterList().map((c) => h('li', {}, `${new Date(c.at).toLocaleTimeString()} · ${c.title}`)));
  };
  return { el, render };
}

// The export needs the bearer token: fetch it, then save the blob.
async function downloadUnanswered() {
  const r = await fetch(`/api/rooms/${room}/questions/unanswered?format=csv`, { headers: { Authorization: `Bearer ${socket.token}` } });
  if (!r.ok) throw new Error(`Export failed: ${r.status}`);
  const url = URL.createObjectURL(await r.blob());
  const a = h('a', { href: url, download: `${room}-unanswered.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function loadEarlier() {
  const oldest = state.chatList()[0]?.id;
  const r = await fetch(`/api/rooms/${room}/chat?limit=50${oldest ? `&before=${oldest}` : ''}`, { headers: { Authorization: `Bearer ${socket.token}` } });
  if (r.ok) { state.addHistory(await r.json()); render(); }
}

// Calls the room's REST API with the host's token.
async function api(method, path, body) {
  const r = await fetch(`/api/rooms/${room}${path}`, {
    method,
    headers: { Authorization: `Bearer ${socket.token}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || `${method} ${path}: ${r.status}`);
  return r.status === 204 ? null : r.json();
}

// Removes an attendee from the event (chat, hand queue, waiting room): every token of theirs is
// refused from now on (a ban by participant, kept across restarts); the server closes their
// pages' connections, ends their WHIP session and lowers their hand.
function removeParticipant(actor) {
  const name = actor.name || actor.participant_id;
  if (!confirm(`Remove ${name} from the event? They are disconnected and cannot come back with this identity.`)) return;
  report(api('POST', '/tokens/revoke', { participant_id: actor.participant_id }));
}

const lifecycle = eventPanel({ api, report, onRemove: removeParticipant });
const stage = stageList();
const counts = liveCounts({ state, stage, registry, report });
stage.onRefresh = () => counts.render();
const panels = [
  lifecycle,
  counts,
  stage,
  qaPanel({ state, send, report, moderator: true }),
  pollBuilder(),
  handQueue(),
  chatPanel({ state, send, report, loadEarlier, moderator: true, onRemove: removeParticipant }),
  chaptersAndExport(),
];
// Q&A, polls and chat beside the stage; hands, chapters and the export under it.
$('panels').append(errorLine, ...panels.filter((p) => ['qa', 'polls', 'chat'].includes(p.el.id)).map((p) => p.el));
$('stage-panels').append(...panels.filter((p) => ['event', 'counts', 'stage-list', 'hand-queue', 'chapters'].includes(p.el.id)).map((p) => p.el));
// Breakout rooms (web/breakout-controls.js): split, list, visit, end.
const breakouts = breakoutControls({ room, token: () => socket?.token, report });
$('stage-panels').append(breakouts.el);
function render() { for (const p of panels) p.render(); }
render();

// The event of a seq an ack names (the ack may come before the event itself).
const waiting = new Map();
const seen = new Map();
const eventOf = (seq) => (seen.has(seq) ? Promise.resolve(seen.get(seq)) : new Promise((resolve) => waiting.set(seq, resolve)));

function connect(token) {
  socket = new RoomSocket(room, {
    token,
    onStatus: (text, ok) => { $('connection').textContent = text; $('connection').className = ok ? 'ok' : 'muted'; },
    onWelcome(w) {
      state.me = w.participant;
      if (w.participant.role !== 'host' && w.participant.role !== 'presenter') {
        errorLine.textContent = 'This token is not a host token: moderation is refused.';
      }
      if (w.snapshot) state.applySnapshot(w.snapshot);
      window.townhallStudio.connected = true;
      lifecycle.refresh();
      // Invitations sent before this page opened (their jti, for Remove and Withdraw).
      api('GET', '/invitations').then((r) => { for (const i of r.invitations) registry.add(i); stage.refresh(); }).catch(() => {});
      render();
    },
    onEvent(e) {
      state.apply(e);
      render();
      waiting.get(e.seq)?.(e);
      waiting.delete(e.seq);
      seen.set(e.seq, e);
      if (seen.size > 64) seen.delete(seen.keys().next().value);
    },
    onResults(r) { state.applyResults(r); render(); },
    // Invitations (their jti, for Remove) and the stage's changes, at once.
    onNotice(n) {
      lifecycle.notice(n);
      if (n.type === 'stage_invitation_sent') registry.add(n);
      if (['presenter_removed', 'presenter_audio', 'presenter_video', 'stage_invitation_sent'].includes(n.type)) stage.refresh();
    },
    onBreakout() { breakouts.refresh(); },
  });
  socket.connect();
}

// The host's token, from the link or as pasted.
function hostToken() {
  return new URLSearchParams(location.hash.slice(1)).get('token');
}

const token = fragment.get('token');
if (token) {
  $('token-form').hidden = true;
  connect(token);
} else {
  $('token-form').onsubmit = (e) => {
    e.preventDefault();
    const pasted = $('token').value.trim();
    if (!pasted) return;
    history.replaceState(null, '', `#token=${encodeURIComponent(pasted)}`);
    $('token-form').hidden = true;
    connect(pasted);
  };
}
if (!fragment.has('nostage')) playStage();
