// The interaction events a player finds in the program itself (src/interaction/inband.rs):
// - EXT-X-DATERANGE, from hls.js's level details (`details.dateRanges`, on LEVEL_UPDATED):
//   `townhall.poll` (poll-<id>: opened at START-DATE with X-QUESTION, X-OPTIONS, X-MULTIPLE and
//   X-ALLOW-CHANGE, closed at
//   END-DATE with X-RESULTS and X-VOTERS), `townhall.question` (question-<id>-<seq>: answering
//   from START-DATE, X-STATUS at END-DATE), `townhall.chapter` (chapter-<id>: X-TITLE).
//   They become partial events (`partial: true`: a range lacks e.g. a poll's `multiple`).
// - ID3 in `emsg`: hls.js (and Safari) turn each into a cue of a metadata text track whose
//   value is {key: "TXXX", info: "townhall", data: <the event's JSON, as the WebSocket sends it>}.
// Each is pushed once to `push(event, path)`; the timeline holds it until its `at`.

// Text and JSON values (X-QUESTION, X-OPTIONS, X-RESULTS, X-TEXT, X-TITLE) are percent-encoded
// UTF-8: a quoted-string cannot hold '"'.
export function decodeText(value) {
  if (value == null) return null;
  try { return decodeURIComponent(value); } catch { return null; }
}

export function decodeArray(value) {
  try { return JSON.parse(decodeText(value) ?? '[]'); } catch { return []; }
}

export class DateRangeSource {
  constructor(push) {
    this.push = push;
    this.pushed = new Set();
  }

  once(key, event) {
    if (this.pushed.has(key)) return;
    this.pushed.add(key);
    this.push({ ...event, partial: true }, 'daterange');
  }

  // hls.js: LEVEL_UPDATED's details.dateRanges, an object of DateRange by ID.
  update(dateRanges) {
    for (const range of Object.values(dateRanges || {})) {
      if (!range) continue;
      const attr = range.attr || {};
      const start = range.startDate?.getTime();
      const end = range.endDate?.getTime();
      if (!Number.isFinite(start)) continue;
      this.range(range.id, range.class, start, Number.isFinite(end) ? end : null, (name) => attr[name]);
    }
  }

  range(id, cls, start, end, x) {
    if (cls === 'townhall.poll' && id.startsWith('poll-')) {
      const poll = id.slice(5);
      const opened = { type: 'poll_opened', id: poll, question: decodeText(x('X-QUESTION')) ?? '', options: decodeArray(x('X-OPTIONS')), multiple: x('X-MULTIPLE') === 'YES', allow_change: x('X-ALLOW-CHANGE') !== 'NO', at: start };
      this.once(`${id}:open`, opened);
      if (end != null && x('X-RESULTS') != null) {
        this.once(`${id}:close`, { type: 'poll_closed', poll, counts: decodeArray(x('X-RESULTS')), voters: Number(x('X-VOTERS') ?? 0), at: end, opened });
      }
    } else if (cls === 'townhall.question') {
      const m = /^question-(.+)-(\d+)$/.exec(id);
      const question = x('X-QUESTION-ID') ?? m?.[1];
      if (!question) return;
      this.once(`${id}:start`, { type: 'question_status', question, status: 'answering', text: decodeText(x('X-TEXT')), at: start, seq: m ? Number(m[2]) : undefined });
      if (end != null && x('X-STATUS')) this.once(`${id}:end`, { type: 'question_status', question, status: x('X-STATUS'), at: end });
    } else if (cls === 'townhall.chapter' && id.startsWith('chapter-')) {
      this.once(`${id}:start`, { type: 'chapter_started', id: id.slice(8), title: decodeText(x('X-TITLE')) ?? '', at: start });
    }
  }
}

// The emsg path: scans the video's metadata text tracks for townhall's ID3 cues.
export class EmsgSource {
  constructor(video, push) {
    Object.assign(this, { video, push });
    this.done = new WeakSet();
    this.seqs = new Set();
  }

  scan() {
    const tracks = this.video.textTracks;
    for (let t = 0; t < tracks.length; t++) {
      const track = tracks[t];
      if (track.kind !== 'metadata') continue;
      if (track.mode === 'disabled') track.mode = 'hidden';
      const cues = track.cues;
      if (!cues) continue;
      for (let i = 0; i < cues.length; i++) {
        const cue = cues[i];
        if (this.done.has(cue)) continue;
        this.done.add(cue);
        const v = cue.value;
        if (!v || v.key !== 'TXXX' || v.info !== 'townhall' || typeof v.data !== 'string') continue;
        let event;
        try { event = JSON.parse(v.data); } catch { continue; }
        if (typeof event.seq !== 'number' || this.seqs.has(event.seq)) continue;
        this.seqs.add(event.seq);
        this.push(event, 'emsg');
      }
    }
  }
}
