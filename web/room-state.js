// A room's interaction state as one participant sees it, built from the server's snapshot
// (`welcome`) and the events of the log (interaction/src/event.rs documents both). Pure: no
// DOM, no socket, no clock; the watch page feeds it events as its player reaches their `at`,
// the replay rebuilds it from the log up to the replay's playingDate, the studio at once.
//
// Every apply is idempotent per id (an event that reaches the page twice, or a DATERANGE that
// repeats what a snapshot already said, changes nothing the second time).

export class RoomState {
  constructor(me = null) {
    this.me = me; // {participant_id, name, role}
    this.reset();
  }

  reset() {
    this.chat = new Map(); // id -> {id, at, ts, author, text, visibility}
    this.chatMore = false;
    this.pinned = null; // a chat message, or {id} when its text is not known
    this.questions = new Map(); // id -> {id, at, ts, author, text, status, votes, voted}
    this.polls = new Map(); // id -> {id, question, options: [text], counts, voters, multiple, allow_change, state, opened_at, closed_at, my_vote}
    this.hands = new Map(); // participant_id -> {participant_id, name, at}
    this.invitations = [];
    this.chapters = new Map(); // id -> {id, title, at, end_at}
    this.seq = 0;
  }

  get isModerator() {
    return this.me?.role === 'host' || this.me?.role === 'presenter';
  }

  get answering() {
    for (const q of this.questions.values()) if (q.status === 'answering') return q;
    return null;
  }

  get myHandRaised() {
    return !!this.me && this.hands.has(this.me.participant_id);
  }

  // Replaces everything with a `welcome` snapshot.
  applySnapshot(snapshot) {
    this.reset();
    this.seq = snapshot.seq;
    for (const m of snapshot.chat?.messages ?? []) this.chat.set(m.id, m);
    this.chatMore = !!snapshot.chat?.more;
    this.pinned = snapshot.pinned ?? null;
    for (const q of snapshot.questions ?? []) this.questions.set(q.id, { ...q });
    if (snapshot.answering) this.questions.set(snapshot.answering.id, { ...snapshot.answering });
    for (const p of snapshot.polls ?? []) {
      this.polls.set(p.id, {
        id: p.id, question: p.question, options: p.options.map((o) => o.text),
        counts: p.options.map((o) => o.votes), voters: p.voters, multiple: p.multiple,
        allow_change: p.allow_change, state: p.state, opened_at: p.opened_at, closed_at: p.closed_at,
        my_vote: p.my_vote ?? null,
      });
    }
    for (const h of snapshot.hands ?? []) this.hands.set(h.participant_id, h);
    for (const c of snapshot.chapters ?? []) this.chapters.set(c.id, c);
  }

  // Older chat from `GET /api/rooms/{room}/chat?before=…`.
  addHistory(page) {
    for (const m of page.messages) this.chat.set(m.id, m);
    this.chatMore = page.more;
  }

  // Live results (`poll_results`, not in the log).
  applyResults(r) {
    const poll = this.polls.get(r.poll);
    if (!poll || poll.state === 'closed') return;
    poll.counts = r.counts;
    poll.voters = r.voters;
  }

  // One event of the log.
  apply(e) {
    if (e.seq) this.seq = Math.max(this.seq, e.seq);
    const mine = this.me && e.actor?.participant_id === this.me.participant_id;
    switch (e.type) {
      case 'chat_message':
        this.chat.set(e.id, { id: e.id, at: e.at, ts: e.ts, author: e.actor, text: e.text, visibility: e.visibility });
        break;
      case 'chat_deleted':
        this.chat.delete(e.message);
        if (this.pinned?.id === e.message) this.pinned = null;
        break;
      case 'chat_pinned':
        this.pinned = this.chat.get(e.message) ?? { id: e.message };
        break;
      case 'chat_unpinned':
        if (this.pinned?.id === e.message) this.pinned = null;
        break;
      case 'question_asked':
        if (!this.questions.has(e.id)) {
          this.questions.set(e.id, { id: e.id, at: e.at, ts: e.ts, author: e.actor, text: e.text, status: 'open', votes: 0, voted: false });
        }
        break;
      case 'question_voted': {
        const q = this.questions.get(e.question);
        if (!q) break;
        q.votes = e.votes;
        if (mine) q.voted = e.voted;
        break;
      }
      case 'question_status': {
        const q = this.questions.get(e.question) ?? this.placeholderQuestion(e);
        if (e.status === 'answering') {
          for (const other of this.questions.values()) if (other.status === 'answering' && other.id !== q.id) other.status = 'open';
        }
        q.status = e.status;
        break;
      }
      case 'poll_created':
      case 'poll_opened': {
        const known = this.polls.get(e.id);
        if (known && known.state === 'open' && e.type === 'poll_opened' && !e.partial) {
          Object.assign(known, { multiple: e.multiple, allow_change: e.allow_change }); // completes a DATERANGE's copy
        }
        if (known && (known.state === 'closed' || (known.state === 'open' && e.type === 'poll_opened'))) break;
        this.polls.set(e.id, {
          id: e.id, question: e.question, options: e.options, counts: known?.counts ?? e.options.map(() => 0),
          voters: known?.voters ?? 0, multiple: e.multiple, allow_change: e.allow_change,
          state: e.type === 'poll_opened' ? 'open' : 'draft', opened_at: e.type === 'poll_opened' ? e.at : null,
          closed_at: null, my_vote: known?.my_vote ?? null,
        });
        break;
      }
      case 'poll_voted': {
        const poll = this.polls.get(e.poll);
        if (poll && mine) poll.my_vote = e.options;
        break;
      }
      case 'poll_closed': {
        const poll = this.polls.get(e.poll);
        if (!poll) break;
        poll.state = 'closed';
        poll.counts = e.counts;
        poll.voters = e.voters;
        poll.closed_at ??= e.at;
        break;
      }
      case 'hand_raised':
        this.hands.set(e.actor.participant_id, { participant_id: e.actor.participant_id, name: e.actor.name, at: e.at, ts: e.ts });
        break;
      case 'hand_lowered':
        this.hands.delete(e.participant);
        break;
      case 'hands_cleared':
        this.hands.clear();
        break;
      case 'hand_invited':
        // As on the server (interaction/src/hands.rs): the invitation takes the hand out of the queue.
        this.hands.delete(e.participant);
        this.invitations.push({ participant_id: e.participant, by: e.actor, at: e.at });
        break;
      case 'chapter_started': {
        if (this.chapters.has(e.id)) break;
        for (const c of this.chapters.values()) if (c.end_at == null) c.end_at = e.at;
        this.chapters.set(e.id, { id: e.id, title: e.title, at: e.at, end_at: null });
        break;
      }
      default:
        break;
    }
  }

  // A question known only from its DATERANGE (the question-<id>-<seq> range carries its text).
  placeholderQuestion(e) {
    const q = { id: e.question, at: e.at, ts: e.ts ?? 0, author: null, text: e.text ?? '', status: 'open', votes: 0, voted: false };
    this.questions.set(q.id, q);
    return q;
  }

  // Chat, oldest first.
  chatList() {
    return [...this.chat.values()].sort((a, b) => a.id - b.id);
  }

  // Questions by votes (most first), then time (oldest first).
  questionList({ withDismissed = false } = {}) {
    return [...this.questions.values()]
      .filter((q) => withDismissed || q.status !== 'dismissed')
      .sort((a, b) => b.votes - a.votes || a.at - b.at || a.id.localeCompare(b.id, undefined, { numeric: true }));
  }

  // Polls, newest first.
  pollList() {
    return [...this.polls.values()].sort((a, b) => b.id.localeCompare(a.id, undefined, { numeric: true }));
  }

  chapterList() {
    return [...this.chapters.values()].sort((a, b) => a.at - b.at);
  }
}
