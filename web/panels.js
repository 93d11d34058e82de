// The interaction panels of the watch page (and, with `moderator`, the chat and Q&A of the
// studio): chat (send, history, pinned message), Q&A (ask, upvote, the question being answered),
// the poll (vote, live and final results) and the raised hand. They draw a RoomState; user
// text only ever goes into textContent.

// A DOM element; null/false children are left out.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && k !== 'list') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

const who = (actor) => actor?.name || (actor?.role === 'host' ? 'Host' : 'Someone');

// Shows a command's outcome: errors (rate limits with their wait) in the panels' error line.
export function reporter(line) {
  let timer = null;
  return (promise) => promise.then(
    (ack) => { line.textContent = ''; return ack; },
    (err) => {
      const wait = err.retryAfterMs ? ` Try again in ${Math.ceil(err.retryAfterMs / 1000)} s.` : '';
      line.textContent = `${err.message}${wait}`;
      clearTimeout(timer);
      timer = setTimeout(() => { line.textContent = ''; }, 8000);
      throw err;
    },
  );
}

// Chat: pinned message, messages (history on demand), input.
// `onRemove(actor)` (the studio): a Remove button on attendees' messages.
export function chatPanel({ state, send, report, loadEarlier, moderator = false, onRemove = null }) {
  const list = h('ol', { class: 'chat-list', 'aria-live': 'polite' });
  const pinned = h('div', { class: 'pinned', hidden: true });
  const more = h('button', { class: 'link', hidden: true, onclick: () => loadEarlier() }, 'Load earlier messages');
  const input = h('input', { placeholder: 'Say something…', maxLength: 1000, 'aria-label': 'Chat message' });
  const form = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    report(send({ type: 'chat_send', text })).then(() => { input.value = ''; }, () => {});
  } }, input, h('button', { class: 'primary', type: 'submit' }, 'Send'));
  const el = h('section', { class: 'card', id: 'chat' }, h('h2', {}, 'Chat'), pinned, more, list, form);
  let shown = '';
  const render = () => {
    const p = state.pinned;
    pinned.hidden = !p;
    if (p) {
      pinned.replaceChildren(h('strong', {}, 'Pinned: '), p.text != null ? `${who(p.author)}: ${p.text}` : `message #${p.id}`);
      if (moderator) pinned.append(h('button', { class: 'small', onclick: () => report(send({ type: 'chat_unpin' })) }, 'Unpin'));
    }
    more.hidden = !state.chatMore;
    const messages = state.chatList();
    const key = messages.map((m) => m.id).join(',') + (moderator ? `|${state.pinned?.id}` : '');
    if (key === shown) return;
    shown = key;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.replaceChildren(...messages.map((m) => h('li', { 'data-id': m.id, class: m.visibility === 'moderators' ? 'private' : '' },
      h('span', { class: 'author' }, who(m.author)), ' ', m.text,
      moderator ? h('span', { class: 'actions' },
        h('button', { class: 'small', onclick: () => report(send({ type: 'chat_pin', message: m.id })) }, 'Pin'),
        h('button', { class: 'small danger', onclick: () => report(send({ type: 'chat_delete', message: m.id })) }, 'Delete'),
        onRemove && m.author?.role === 'attendee' ? h('button', { class: 'small danger', 'data-remove': m.author.participant_id, onclick: () => onRemove(m.author) }, 'Remove') : null) : null)));
    if (atBottom) list.scrollTop = list.scrollHeight;
  };
  return { el, render };
}

const STATUS_LABEL = { open: '', answering: 'Being answered', answered: 'Answered', dismissed: 'Dismissed' };

// Q&A: the question being answered, the list by votes then time, ask.
export function qaPanel({ state, send, report, moderator = false }) {
  const answering = h('div', { class: 'answering', hidden: true });
  const list = h('ol', { class: 'qa-list' });
  const input = h('input', { placeholder: 'Ask a question…', maxLength: 500, 'aria-label': 'Question' });
  const form = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    report(send({ type: 'question_ask', text })).then(() => { input.value = ''; }, () => {});
  } }, input, h('button', { class: 'primary', type: 'submit' }, 'Ask'));
  const el = h('section', { class: 'card', id: 'qa' }, h('h2', {}, 'Q&A'), answering, list, moderator ? null : form);
  const mark = (q, status, label) => h('button', { class: 'small', disabled: q.status === status, onclick: () => report(send({ type: 'question_mark', question: q.id, status })) }, label);
  const render = () => {
    const a = state.answering;
    answering.hidden = !a;
    if (a) answering.replaceChildren(h('strong', {}, 'Now answering: '), a.text);
    list.replaceChildren(...state.questionList({ withDismissed: moderator }).map((q) => h('li', { 'data-id': q.id, class: `q-${q.status}` },
      h('button', {
        class: `vote${q.voted ? ' voted' : ''}`, 'aria-pressed': String(!!q.voted), title: q.voted ? 'Remove your vote' : 'Upvote',
        onclick: () => report(send({ type: 'question_upvote', question: q.id })),
      }, `▲ ${q.votes}`),
      h('span', { class: 'text' }, q.text, q.author ? h('small', {}, ` — ${who(q.author)}`) : null),
      STATUS_LABEL[q.status] ? h('span', { class: 'tag' }, STATUS_LABEL[q.status]) : null,
      moderator ? h('span', { class: 'actions' }, mark(q, 'answering', 'Answering'), mark(q, 'answered', 'Answered'),
        mark(q, 'dismissed', 'Dismiss'), mark(q, 'open', 'Reopen')) : null)));
  };
  return { el, render };
}

// Bars of a poll's results.
export function results(poll) {
  const total = poll.counts.reduce((a, b) => a + b, 0) || 1;
  return h('ol', { class: 'results' }, ...poll.options.map((text, i) => {
    const n = poll.counts[i] ?? 0;
    const pct = Math.round((100 * n) / total);
    const mine = poll.my_vote?.includes(i);
    return h('li', { class: mine ? 'mine' : '' }, h('span', { class: 'bar', style: `width:${pct}%` }),
      h('span', { class: 'label' }, text), h('span', { class: 'count' }, `${n} · ${pct}%`));
  }));
}

// The poll: the open one (vote, live results), else the last closed one (final results).
export function pollPanel({ state, send, report }) {
  const body = h('div');
  const el = h('section', { class: 'card', id: 'poll', hidden: true }, h('h2', {}, 'Poll'), body);
  let drawn = '';
  const render = () => {
    const polls = state.pollList().filter((p) => p.state !== 'draft');
    const poll = polls.find((p) => p.state === 'open') ?? polls.find((p) => p.state === 'closed');
    el.hidden = !poll;
    if (!poll) return;
    const key = JSON.stringify([poll.id, poll.state, poll.counts, poll.voters, poll.my_vote, poll.multiple, poll.allow_change]);
    if (key === drawn) return;
    drawn = key;
    el.dataset.poll = poll.id;
    el.dataset.state = poll.state;
    const voted = poll.my_vote != null;
    const children = [h('p', { class: 'question' }, poll.question)];
    if (poll.state === 'open' && (!voted || poll.allow_change)) {
      const name = `poll-${poll.id}`;
      const form = h('form', { class: 'vote-form', onsubmit: (e) => {
        e.preventDefault();
        const options = [...form.querySelectorAll('input:checked')].map((i) => Number(i.value));
        if (!options.length) return;
        report(send({ type: 'poll_vote', poll: poll.id, options })).catch(() => {});
      } }, ...poll.options.map((text, i) => h('label', { class: 'option' },
        h('input', { type: poll.multiple ? 'checkbox' : 'radio', name, value: String(i), checked: !!poll.my_vote?.includes(i) }), ` ${text}`)),
      h('button', { class: 'primary', type: 'submit' }, voted ? 'Change vote' : 'Vote'));
      children.push(form);
    }
    children.push(results(poll));
    children.push(h('p', { class: 'muted' }, `${poll.voters} voter${poll.voters === 1 ? '' : 's'}`,
      poll.state === 'closed' ? ' · Final results' : ' · Live results', voted ? ' · You voted' : ''));
    body.replaceChildren(...children);
  };
  return { el, render };
}

// Raise or lower one's hand; an invitation to the stage is announced.
export function handPanel({ state, send, report }) {
  const button = h('button', { id: 'hand', onclick: () => report(send({ type: state.myHandRaised ? 'hand_lower' : 'hand_raise' })) });
  const note = h('span', { class: 'muted' });
  const el = h('section', { class: 'card row', id: 'hands' }, button, note);
  const render = () => {
    button.textContent = state.myHandRaised ? 'Lower hand' : 'Raise hand';
    button.classList.toggle('raised', state.myHandRaised);
    const invited = state.me && state.invitations.some((i) => i.participant_id === state.me.participant_id);
    note.textContent = invited ? 'The host invites you to the stage.' : state.myHandRaised ? 'Your hand is raised.' : '';
  };
  return { el, render };
}
