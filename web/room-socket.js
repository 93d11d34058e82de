// The client of `/ws/{room}` (src/http/ws.rs documents the protocol).
//
// - Identity: an attendee keeps the token of its first `welcome` in localStorage, per room, and
//   presents it again, so a reload or a reconnect is the same participant. Hosts and presenters
//   pass their token instead (`token` option) and nothing is stored.
// - Reconnects (backoff 0.5 s → 8 s) with `since` = the last seq received, after a drop or a
//   `resync` notice, so nothing is missed and nothing comes twice.
// - Commands carry a nonce; the server answers each with `ack` or `error` (in order). A command
//   sent while the socket is down waits and goes out after the reconnect with the same nonce:
//   the server handles a nonce once, so a resend after a drop is harmless.
// - Removed (close 4003: the host banned this participant or revoked its token, rejected its
//   registration, or its breakout room ended; or, before any welcome, the API refuses the
//   token): no reconnect; onRemoved(reason): `revoked`, `rejected`, `ended`, `expired`, …
// - Heartbeats: `heartbeat(playing)` sends {"type":"heartbeat","playing"} (the page calls it
//   every `heartbeat_interval_s` of the welcome); no reply comes.
//
// Callbacks: onWelcome(welcome), onEvent(event), onResults(poll_results), onStatus(text, ok),
// onWaiting(waiting) while the waiting room holds this attendee, onInvitation(stage_invitation),
// onBreakout(breakout_assigned | breakout_closing | breakout_ended), onRemoved(reason),
// onNotice(any other message without seq: phase, waiting_list, presenter_removed,
// presenter_audio, presenter_video, stage_invitation_sent, removed).

const storageKey = (room) => `townhall.identity.${room}`;

export class RoomSocket {
  constructor(room, { token = null, name = null, onWelcome, onEvent, onResults, onStatus, onWaiting, onInvitation, onBreakout, onNotice, onRemoved } = {}) {
    Object.assign(this, { room, onWelcome, onEvent, onResults, onStatus, onWaiting, onInvitation, onBreakout, onNotice, onRemoved });
    this.fixedToken = token;
    this.name = name;
    this.lastSeq = null; // null: never welcomed (ask for a snapshot)
    this.pending = new Map(); // nonce -> {message, resolve, reject}
    this.outbox = []; // nonces not sent yet
    this.session = Math.random().toString(36).slice(2, 8);
    this.counter = 0;
    this.backoff = 500;
    this.participant = null;
    this.closed = false;
  }

  get token() {
    if (this.fixedToken) return this.fixedToken;
    try { return localStorage.getItem(storageKey(this.room)); } catch { return null; }
  }

  connect() {
    const q = new URLSearchParams();
    const token = this.token;
    if (token) q.set('token', token);
    if (this.name) q.set('name', this.name);
    if (this.lastSeq != null) q.set('since', String(this.lastSeq));
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws/${encodeURIComponent(this.room)}?${q}`);
    this.ws = ws;
    ws.onmessage = (m) => this.receive(JSON.parse(m.data));
    ws.onclose = async (e) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      if (e.code === 4003) return this.stop(ws.removedReason ?? 'ended');
      // A refused upgrade closes with 1006 before any welcome and tells scripts nothing: the
      // API says why. A ban (revoked) or a rejected registration stops here, and so does any
      // refusal of a token the page was given; a stored token this server no longer takes
      // (expired, another server's, a wiped data dir) is dropped and the next attempt joins anew.
      if (!ws.welcomed && !ws.waited && token) {
        const refusal = await this.refusal(token);
        if (this.closed) return;
        if (refusal && (this.fixedToken || refusal === 'revoked' || refusal === 'rejected')) return this.stop(refusal);
        if (refusal) {
          try { localStorage.removeItem(storageKey(this.room)); } catch { /* private mode */ }
        }
      }
      this.onStatus?.(e.code === 4000 ? 'Catching up…' : 'Reconnecting…', false);
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 8000);
    };
  }

  close() {
    this.closed = true;
    this.ws?.close();
  }

  // No more reconnects: the room will not take this participant (`reason` as onRemoved's).
  stop(reason) {
    this.closed = true;
    this.onStatus?.('Disconnected', false);
    this.onRemoved?.(reason);
  }

  // Why the server refuses `token` in this room (the problem's `reason`, or `rejected`), or
  // null when it takes it or cannot be asked.
  async refusal(token) {
    try {
      const r = await fetch(`/api/rooms/${encodeURIComponent(this.room)}/events?limit=1`, { headers: { Authorization: `Bearer ${token}` } });
      if (r.status !== 401 && r.status !== 403) return null;
      const problem = await r.json();
      return problem.code === 'registration_rejected' ? 'rejected' : (problem.reason ?? problem.code);
    } catch { return null; }
  }

  // The player's heartbeat (watch time in the room's report); not answered, not queued.
  heartbeat(playing) {
    if (this.ws?.readyState === WebSocket.OPEN && this.ws.welcomed) {
      this.ws.send(JSON.stringify({ type: 'heartbeat', playing }));
    }
  }

  receive(m) {
    switch (m.type) {
      case 'welcome':
        this.ws.welcomed = true;
        this.remember(m);
        this.lastSeq = m.seq;
        this.onWelcome?.(m);
        this.onStatus?.('Connected', true);
        this.flush();
        break;
      case 'waiting':
        // Held in the waiting room: the identity is kept (the same participant waits again
        // after a reconnect); `welcome` follows when the host lets it in.
        this.ws.waited = true;
        this.remember(m);
        this.onWaiting?.(m);
        this.onStatus?.('Waiting room', true);
        break;
      case 'ack':
      case 'error': {
        // An attendee's own vote, hand or private message comes in the ack, not on the room's
        // channel (it does not move lastSeq: the channel may still bring earlier events).
        if (m.type === 'ack') for (const e of m.own || []) this.onEvent?.(e);
        const p = this.pending.get(m.nonce);
        if (!p) break;
        this.pending.delete(m.nonce);
        if (m.type === 'ack') p.resolve(m);
        else p.reject(Object.assign(new Error(m.detail), { code: m.code, status: m.status, retryAfterMs: m.retry_after_ms }));
        break;
      }
      case 'resync':
        // The server closes (4000) right after: onclose reconnects with since.
        this.lastSeq = m.seq;
        break;
      case 'stage_invitation':
        this.onInvitation?.(m);
        break;
      case 'breakout_assigned':
      case 'breakout_closing':
      case 'breakout_ended':
        this.onBreakout?.(m);
        break;
      case 'removed':
        // The close (4003) follows: onclose stops there.
        this.ws.removedReason = m.reason;
        this.onNotice?.(m);
        break;
      case 'poll_results':
        this.onResults?.(m);
        break;
      default:
        if (typeof m.seq === 'number') {
          this.lastSeq = Math.max(this.lastSeq ?? 0, m.seq);
          this.onEvent?.(m);
        } else {
          this.onNotice?.(m);
        }
    }
  }

  // The server accepted the connection (welcome or waiting): who this is, kept for reconnects.
  remember(m) {
    this.backoff = 500;
    this.participant = m.participant;
    if (m.token && !this.fixedToken) {
      try { localStorage.setItem(storageKey(this.room), m.token); } catch { /* private mode */ }
    }
  }

  // Sends a command; resolves with its ack, rejects with its error (err.code, err.retryAfterMs).
  send(command) {
    const nonce = `${this.session}-${++this.counter}`;
    const message = JSON.stringify({ ...command, nonce });
    return new Promise((resolve, reject) => {
      this.pending.set(nonce, { message, resolve, reject });
      this.outbox.push(nonce);
      this.flush();
    });
  }

  // Sends what waits; after a reconnect, resends what got no reply (same nonces).
  flush() {
    if (this.ws?.readyState !== WebSocket.OPEN || !this.ws.welcomed) return;
    if (this.ws.resent !== true) {
      this.ws.resent = true;
      this.outbox = [...this.pending.keys()];
    }
    for (const nonce of this.outbox.splice(0)) {
      const p = this.pending.get(nonce);
      if (p) this.ws.send(p.message);
    }
  }
}
