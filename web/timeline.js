// Releases interaction events on the player's clock: an event (or a `poll_results`) is held
// until the player's playingDate reaches its `at` (program time), then handed on, in seq order.
//
// The same event may come three ways: the WebSocket, EXT-X-DATERANGE and ID3 in `emsg`. The
// WebSocket and emsg copies carry the event's `seq`; a DATERANGE carries what its ID and
// attributes say (`poll-<id>`, `question-<id>-<seq>`, `chapter-<id>`), so each event also has a
// key by meaning (`poll_opened:p1`). Whatever comes first is released; later copies are dropped,
// except that a full copy (WebSocket, emsg) of an event first known from a DATERANGE (which
// lacks fields such as `multiple`) is applied silently to complete it.
//
// Every release is recorded in `shown` (read by tests through window.townhallInteraction):
// {path, type, seq, id, at, playingDate, lateMs, perfNow, wallMs}.

export function meaningKey(e) {
  switch (e.type) {
    case 'poll_opened': return `poll_opened:${e.id}`;
    case 'poll_closed': return `poll_closed:${e.poll}`;
    case 'chapter_started': return `chapter_started:${e.id}`;
    case 'question_status': return `question_status:${e.question}:${e.status}:${e.at}`;
    default: return null;
  }
}

export class Timeline {
  // clock(): the player's playingDate in ms, or null while it has none.
  // release(item, path): shows an event or poll_results; complete(event): see above.
  constructor({ clock, release, complete }) {
    Object.assign(this, { clock, release, complete });
    this.ws = []; // arrival order (at never decreases along seq)
    this.inband = []; // any order
    this.seenSeq = new Set();
    this.seenKey = new Map(); // key -> partial?
    this.baseSeq = 0;
    this.shown = [];
    this.arrivals = 0;
  }

  // What a snapshot already includes: events up to `seq`, polls and chapters it lists.
  baseline(seq, keys = []) {
    this.baseSeq = Math.max(this.baseSeq, seq);
    for (const k of keys) this.seenKey.set(k, false);
    this.ws = this.ws.filter((i) => i.type === 'poll_results' || i.seq > this.baseSeq);
  }

  // 'new', 'dup', or 'complete' (a full copy of an event released from a DATERANGE).
  status(e) {
    const key = meaningKey(e);
    const bySeq = typeof e.seq === 'number' && (e.seq <= this.baseSeq || this.seenSeq.has(e.seq));
    const byKey = key != null && this.seenKey.has(key);
    if (!bySeq && !byKey) return 'new';
    if (!e.partial && key != null && this.seenKey.get(key) === true) return 'complete';
    return 'dup';
  }

  push(item, path) {
    if (item.type !== 'poll_results' && this.status(item) === 'dup') return;
    const entry = { item, path, n: this.arrivals++ };
    if (path === 'ws') this.ws.push(entry); else this.inband.push(entry);
  }

  // Releases what is due; returns how many were released.
  tick() {
    const now = this.clock();
    if (now == null) return 0;
    const due = [];
    while (this.ws.length && this.ws[0].item.at <= now) due.push(this.ws.shift());
    if (this.inband.length) {
      const later = [];
      for (const e of this.inband) (e.item.at <= now ? due : later).push(e);
      this.inband = later;
    }
    if (!due.length) return 0;
    due.sort((a, b) => (a.item.seq ?? Infinity) - (b.item.seq ?? Infinity) || a.item.at - b.item.at || a.n - b.n);
    let released = 0;
    for (const { item, path } of due) {
      if (item.type === 'poll_results') {
        this.release(item, path);
        this.record(item, path, now);
        released += 1;
        continue;
      }
      const key = meaningKey(item);
      const status = this.status(item);
      if (status === 'complete') {
        this.seenKey.set(key, false);
        this.complete?.(item);
      }
      if (status !== 'new') continue;
      if (typeof item.seq === 'number') this.seenSeq.add(item.seq);
      if (key != null) this.seenKey.set(key, !!item.partial);
      this.release(item, path);
      this.record(item, path, now);
      released += 1;
    }
    return released;
  }

  record(item, path, playingDate) {
    this.shown.push({
      path, type: item.type, seq: item.seq ?? null, id: item.id ?? item.poll ?? item.question ?? null,
      at: item.at, playingDate, lateMs: playingDate - item.at, perfNow: performance.now(), wallMs: Date.now(),
    });
    if (this.shown.length > 2000) this.shown.splice(0, 1000);
  }

  // Forgets what waits (after a snapshot replaced the state, or a seek in the replay).
  clear() {
    this.ws = [];
    this.inband = [];
  }
}
