// The studio's breakout controls (issue 6): split the attendees connected into N rooms for M
// minutes (`POST /api/rooms/{room}/breakouts`), list the rooms and their members, visit a room
// (its view, web/breakout.js, with the host token: camera off until asked), end them all now
// (`DELETE`). The list is refreshed every 3 s and on the room's breakout messages.
//
// breakoutControls({room, token, report}) → {el, render, refresh}
import { openBreakout } from './breakout.js';
import { h } from './panels.js';

export function breakoutControls({ room, token, report }) {
  const count = h('input', { type: 'number', min: 1, max: 50, value: 2, 'aria-label': 'Rooms', size: 3 });
  const minutes = h('input', { type: 'number', min: 1, max: 240, value: 10, 'aria-label': 'Minutes', size: 4 });
  const status = h('p', { class: 'muted' });
  const list = h('ul', { class: 'breakout-list' });
  const endButton = h('button', { class: 'small danger', hidden: true, onclick: () => act(api('DELETE')) }, 'End now');
  const visitArea = h('div', { class: 'visit' });
  const form = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(api('POST', { rooms: Number(count.value), duration_s: Math.round(Number(minutes.value) * 60) }));
  } }, h('label', { class: 'inline' }, 'Rooms ', count), h('label', { class: 'inline' }, ' minutes ', minutes),
  h('button', { class: 'primary', type: 'submit' }, 'Split attendees'));
  const el = h('section', { class: 'card', id: 'breakouts' }, h('h2', {}, 'Breakout rooms ', endButton), form, status, list, visitArea);
  let run = { running: false, rooms: [] };
  let visiting = null;

  async function api(method, body) {
    const r = await fetch(`/api/rooms/${room}/breakouts`, {
      method,
      headers: { Authorization: `Bearer ${token()}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || `${method} breakouts: ${r.status}`);
    return r.status === 204 ? null : r.json();
  }
  const act = (promise) => report(promise.then(refresh)).catch(() => {});

  function visit(r) {
    visiting?.view.close();
    const view = openBreakout(visitArea, {
      breakout: { ...r, ends_at: run.ends_at }, token: token(), whipUrl: `${r.whip_url}?presenter=host`, whepUrl: r.whep_url,
      camera: false, onLeave: () => { visiting?.view.close(); visiting = null; },
    });
    visiting = { id: r.id, view };
  }

  async function refresh() {
    if (!token()) return;
    try { run = await api('GET'); } catch { return; }
    if (!run.running && visiting) { visiting.view.close(); visiting = null; }
    render();
  }

  function render() {
    form.hidden = run.running;
    endButton.hidden = !run.running;
    status.textContent = run.running
      ? `Open until ${new Date(run.ends_at).toLocaleTimeString()}: everyone comes back then.`
      : 'Splits the attendees connected now; each room gets its own small stage and chat.';
    list.replaceChildren(...run.rooms.map((r) => h('li', { 'data-id': r.id },
      h('div', { class: 'row' }, h('strong', {}, r.name), h('span', { class: 'tag' }, `${r.participants.length}`),
        h('button', { class: 'small', onclick: () => visit(r) }, 'Visit')),
      h('p', { class: 'muted' }, r.participants.map((p) => p.name).join(', ')))));
  }

  setInterval(refresh, 3000);
  return { el, render, refresh };
}
