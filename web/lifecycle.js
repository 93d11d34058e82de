// The webinar's lifecycle and waiting room in the pages (src/http/lifecycle.rs, ws_waiting.rs).
//
// - eventPanel (studio): the phase (scheduled → green room → live → ended) with the host's
//   buttons, links to the registration and watch pages, live counts (participants connected, waiting), "admit by hand", and the waiting
//   list with admit one / admit all / remove one. Kept current by the room view (polled) and by the
//   `waiting_list` and `phase` messages of the host's WebSocket.
// - waitingScreen (watch page): what an attendee the room holds sees instead of the player and
//   panels, and why (`not_live`, `admission`, `approval`); gone at `welcome`. Also what one the
//   room will not take (removed by the host, registration declined) sees, for good.
import { h } from './panels.js';

const phaseNames = { scheduled: 'Scheduled', green_room: 'Green room', live: 'Live', ended: 'Ended' };

export function eventPanel({ api, report, onRemove }) {
  let view = null;
  let waiting = [];
  let waitingCount = 0;
  const phaseTag = h('span', { class: 'tag', id: 'phase' }, '…');
  const counts = h('span', { class: 'muted', id: 'counts' });
  const go = (phase, question) => {
    if (question && !confirm(question)) return;
    report(api('POST', '/phase', { phase }).then(refresh));
  };
  const greenRoom = h('button', { id: 'open-green-room', onclick: () => go('green_room') }, 'Open green room');
  const goLive = h('button', { id: 'go-live', class: 'primary', onclick: () => go('live') }, 'Go live');
  const end = h('button', { id: 'end-event', class: 'danger', onclick: () => go('ended', 'End the event for everyone? Publishers are disconnected and the replay is finalised.') }, 'End event');
  const byHand = h('input', { type: 'checkbox', id: 'admit-by-hand', onchange: () => report(api('PUT', '/waiting', { waiting_room: byHand.checked }).then(refresh)) });
  const admitAll = h('button', { class: 'small primary', id: 'admit-all', onclick: () => report(api('POST', '/waiting/admit', { all: true })) }, 'Admit all');
  const list = h('ol', { class: 'waiting-list' });
  // Where attendees sign up and watch, to share.
  const registerLink = h('a', { id: 'register-link', target: '_blank', rel: 'noopener' }, 'Registration page');
  const watchLink = h('a', { id: 'watch-link', target: '_blank', rel: 'noopener' }, 'Watch page');
  const links = h('p', { class: 'row muted' }, registerLink, ' · ', watchLink);
  const el = h('section', { class: 'card', id: 'event' },
    h('h2', {}, 'Event ', phaseTag, ' ', counts),
    links,
    h('div', { class: 'row' }, greenRoom, goLive, end),
    h('label', { class: 'inline' }, byHand, ' Admit attendees by hand (waiting room)'),
    h('h3', {}, 'Waiting room ', admitAll), list);
  const render = () => {
    const phase = view?.phase;
    phaseTag.textContent = phaseNames[phase] ?? '…';
    phaseTag.dataset.phase = phase ?? '';
    greenRoom.hidden = phase !== 'scheduled';
    goLive.hidden = !(phase === 'scheduled' || phase === 'green_room');
    end.hidden = !phase || phase === 'ended';
    byHand.checked = Boolean(view?.waiting_room);
    if (view) { registerLink.href = view.register_page; watchLink.href = view.watch_page; }
    counts.textContent = view ? `${view.participants} connected · ${waitingCount} waiting` : '';
    admitAll.disabled = !waiting.length;
    const reasons = { not_live: 'before live', admission: 'to be admitted', approval: 'registration pending' };
    list.replaceChildren(...(waiting.length ? waiting.map((w) => h('li', { class: 'row', 'data-participant': w.participant },
      h('span', { class: 'text' }, w.name || w.participant), h('span', { class: 'tag' }, reasons[w.reason] ?? w.reason),
      h('button', { class: 'small primary', onclick: () => report(api('POST', '/waiting/admit', { participants: [w.participant] })) }, 'Admit'),
      h('button', { class: 'small danger', 'data-remove': w.participant, onclick: () => onRemove({ participant_id: w.participant, name: w.name }) }, 'Remove')))
      : [h('li', { class: 'muted' }, 'Nobody is waiting.')]));
  };
  async function refresh() {
    try {
      view = await api('GET', '');
      const all = await api('GET', '/waiting');
      waiting = all.waiting.slice(0, 200);
      waitingCount = all.count;
      render();
    } catch { /* not a host token yet: the error line says so */ }
  }
  setInterval(refresh, 3000);
  return {
    el,
    render,
    refresh,
    // A message of the host's WebSocket that is not an event of the log.
    notice(m) {
      if (m.type === 'waiting_list') { waiting = m.waiting; waitingCount = m.count; if (view) view.waiting_room = m.waiting_room; render(); }
      if (m.type === 'phase') refresh();
    },
  };
}

export function waitingScreen(el) {
  const texts = {
    not_live: 'The event has not started yet. You will be let in when it goes live.',
    admission: 'You are in the waiting room. The host will let you in shortly.',
    approval: 'Your registration awaits the host’s approval. This page lets you in once it is approved.',
  };
  return {
    show(m) {
      el.hidden = false;
      el.dataset.reason = m.reason;
      const starts = m.room?.starts_at ? new Date(m.room.starts_at) : null;
      // null children are left out (replaceChildren would write "null").
      el.replaceChildren(...[h('h2', {}, m.room?.name ?? 'Waiting room'),
        starts && m.reason === 'not_live' ? h('p', { class: 'muted', id: 'starts-at' }, `Starts ${starts.toLocaleString([], { dateStyle: 'full', timeStyle: 'short' })}`) : null,
        h('p', {}, texts[m.reason] ?? 'Please wait.')].filter(Boolean));
    },
    hide() { el.hidden = true; },
    // The room will not take this attendee (RoomSocket's onRemoved): said instead of the player.
    removed(reason) {
      const why = {
        revoked: 'The host removed you from this event.',
        rejected: 'The host declined your registration.',
        expired: 'Your link has expired. Ask the host for a new one.',
      };
      el.hidden = false;
      el.dataset.reason = `removed:${reason}`;
      el.replaceChildren(h('h2', {}, 'You are not in this event'), h('p', {}, why[reason] ?? 'This link is not valid for this event.'));
    },
  };
}
