// The studio's side of stage invitations (issue 6) and its live counts. The moderators'
// WebSocket brings `stage_invitation_sent` for each invitation (the presenter name, the
// attendee's display name and the token's `jti`, never the token): the registry keeps them, so
// the stage list shows who a presenter `a-…` is, lists invitations nobody has answered yet,
// and *Remove* both ends the WHIP session and revokes that one token (`takeOff`): the attendee
// drops back to watching and cannot publish again with it, while their own attendee identity
// stays valid. A studio opened later loads the invitations still valid from
// `GET /api/rooms/{room}/invitations` (studio.js).
import { h } from './panels.js';

export function invitationRegistry() {
  const sent = new Map(); // presenter → {name, jti, expires_at}
  return {
    add(notice) { sent.set(notice.presenter, { name: notice.name, jti: notice.jti, expires_at: notice.expires_at }); },
    get: (presenter) => sent.get(presenter) ?? null,
    forget(presenter) { sent.delete(presenter); },
    // Invitations whose presenter is not on the stage now (not joined yet, declined, or left on
    // their own): their tokens still publish until withdrawn. (Whether they are live comes
    // from the room view, which may lag an invitation by a refresh: nothing is latched on it.)
    pending(live) {
      return [...sent.entries()].filter(([presenter]) => !live.has(presenter)).map(([presenter, i]) => ({ presenter, ...i }));
    },
  };
}

// Takes a presenter off the stage: revokes their invitation's token first (so the page cannot
// publish again in between; the server ends the WHIP session that token opened), then ends
// their WHIP session (for an invited presenter that is already over: its 404 is expected).
export async function takeOff(api, registry, presenter) {
  const invitation = registry.get(presenter);
  if (invitation) await api('POST', '/tokens/revoke', { jti: invitation.jti });
  await api('DELETE', `/presenters/${encodeURIComponent(presenter)}`).catch((e) => { if (!invitation) throw e; });
  registry.forget(presenter);
}

// A presenter's label: the invited attendee's name, else the presenter name.
export const presenterLabel = (registry, presenter) => {
  const invitation = registry.get(presenter);
  return invitation ? `${invitation.name} (invited)` : presenter;
};

// The live counts line (on stage, on air, hands, open questions, chat, poll voters) and the
// invitations of people not on the stage, each with *Withdraw*.
export function liveCounts({ state, stage, registry, report }) {
  const line = h('p', { id: 'live-counts', class: 'counts' });
  const pending = h('ul', { id: 'stage-invited', class: 'invited-list' });
  const el = h('section', { class: 'card', id: 'counts' }, h('h2', {}, 'Live'), line, pending);
  const render = () => {
    const { presenters, program } = stage.view();
    const live = new Set(presenters.map((p) => p.name));
    const open = state.questionList().filter((q) => q.status === 'open' || q.status === 'answering').length;
    const poll = state.pollList().find((p) => p.state === 'open');
    const counts = {
      stage: presenters.length,
      hands: state.hands.size,
      questions: open,
      chat: state.chatList().length,
    };
    line.dataset.counts = JSON.stringify({ ...counts, program });
    const count = (n, one, many = `${one}s`) => h('span', { class: 'count' }, h('strong', {}, String(n)), ` ${n === 1 ? one : many}`);
    line.replaceChildren(...[
      count(counts.stage, 'on stage', 'on stage'),
      h('span', { class: 'count' }, h('strong', {}, program ? presenterLabel(registry, program) : 'nobody'), ' on air'),
      count(counts.hands, 'hand'),
      count(counts.questions, 'open question'),
      count(counts.chat, 'chat message'),
      poll ? count(poll.voters, 'voter in the open poll', 'voters in the open poll') : null,
    ].filter(Boolean));
    // An unanswered (or declined) invitation can be withdrawn: its token is revoked.
    const withdraw = (i) => report(stage.api('POST', '/tokens/revoke', { jti: i.jti }).then(() => { registry.forget(i.presenter); render(); }));
    pending.replaceChildren(...registry.pending(live).map((i) => h('li', { class: 'row', 'data-presenter': i.presenter },
      h('span', { class: 'text muted' }, `Invited: ${i.name}, not on stage`),
      h('button', { class: 'small', onclick: () => withdraw(i).catch(() => {}) }, 'Withdraw'))));
  };
  return { el, render };
}
