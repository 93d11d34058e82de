// The replay's interaction: the room's log from `GET /api/rooms/{room}/events` (pages of 1000,
// `since`), shown as of the replay's playingDate (its PROGRAM-DATE-TIME): the state is the
// events with `at` ≤ playingDate applied in seq order. Playing forward applies what comes due;
// seeking back rebuilds from the start. While the event is still live (an EVENT playlist), new
// events are fetched every few seconds. Also the chapter bar of both pages.
import { h } from './panels.js';

async function fetchEvents(room, since) {
  const events = [];
  for (;;) {
    const r = await fetch(`/api/rooms/${encodeURIComponent(room)}/events?since=${since}&limit=1000`, { cache: 'no-store' });
    if (!r.ok) throw new Error(`events: ${r.status}`);
    const page = await r.json();
    events.push(...page.events);
    if (page.events.length) since = page.events[page.events.length - 1].seq;
    if (!page.more) return events;
  }
}

export async function loadReplay({ room, state, clock, render, record }) {
  const events = await fetchEvents(room, 0).catch(() => []);
  let applied = 0; // events[..applied] are in the state
  let last = null; // playingDate at the previous tick
  const replayer = {
    events,
    tick() {
      const now = clock();
      if (now == null) return;
      if (last != null && now < last - 250) {
        // Seeking back: the state as of `now`, from the start.
        state.reset();
        applied = 0;
      }
      last = now;
      let changed = false;
      while (applied < events.length && events[applied].at <= now) {
        const e = events[applied++];
        state.apply(e);
        record(e, now);
        changed = true;
      }
      if (changed || applied === 0) render();
    },
  };
  setInterval(async () => {
    const since = events.length ? events[events.length - 1].seq : 0;
    const more = await fetchEvents(room, since).catch(() => []);
    events.push(...more);
  }, 5000);
  return replayer;
}

const clockTime = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

// The current chapter above the panels; in the replay, every chapter of the log (`all()`:
// chapter_started events) as a link to its start.
export function chapterBar({ state, seekToDate, replay, all = () => [] }) {
  const current = h('strong');
  const list = h('ol', { class: 'chapters' });
  const el = h('div', { id: 'chapter', class: 'chapter-bar' }, current, replay ? list : null);
  const render = () => {
    const chapters = state.chapterList();
    const now = chapters[chapters.length - 1];
    current.textContent = now ? `Chapter: ${now.title}` : '';
    if (replay) {
      list.replaceChildren(...all().map((c) => h('li', {}, h('button', { class: 'link', onclick: () => seekToDate(c.at) }, `${clockTime(c.at)} ${c.title}`))));
    }
  };
  return { el, render };
}
