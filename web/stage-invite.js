// The attendee's side of a stage invitation (issue 6), on the watch page. The host invites a
// raised hand; this attendee's WebSocket brings `stage_invitation` (a presenter token of its
// own). The card asks first: *Join the stage* asks for camera and microphone and publishes them
// over WHIP (whip.js) as presenter `<participant id>` with that token, shows a self preview
// and a *Leave the stage* button (which ends the WHIP session with DELETE). The program goes on
// playing above it. When the host takes them off (`presenter_removed` naming them, or the
// WHIP connection fails or closes), or their attendee token is revoked (`removed`), the
// tracks stop and the card says so: the attendee is back to watching.
//
// Declining tells the moderators in a moderators-only chat line (so the host knows not to
// wait) and forgets the invitation; its token is never used and expires on its own. A later
// invitation asks again.
//
// States (`data-state` of #stage-invite, and window.townhallStage.state for tests):
// idle → invited → joining → on_stage → watching (after leaving or removal); error (camera
// refused or publish failed: try again or decline).
import { publish } from './whip.js';
import { h } from './panels.js';

const CAMERA = { video: { width: { ideal: 640 }, height: { ideal: 360 } }, audio: true };

export function stageInvite({ room, send, report, onChange = () => {} }) {
  const text = h('p', { id: 'stage-text' });
  const preview = h('video', { id: 'stage-preview', muted: true, playsInline: true, autoplay: true, hidden: true });
  const accept = h('button', { id: 'stage-accept', class: 'primary', onclick: () => join() }, 'Join the stage');
  const decline = h('button', { id: 'stage-decline', onclick: () => refuse() }, 'Decline');
  const leave = h('button', { id: 'stage-leave', class: 'danger', onclick: () => quit('You left the stage.') }, 'Leave the stage');
  const buttons = h('div', { class: 'row' }, accept, decline, leave);
  const el = h('section', { class: 'card stage-invite', id: 'stage-invite', role: 'status', 'aria-live': 'polite', hidden: true },
    h('h2', {}, 'Stage'), text, preview, buttons);

  // What tests read; the page's one source of this state.
  const view = { state: 'idle', presenter: null, resource: null, connection: null, frames: 0, reason: null };
  window.townhallStage = view;
  let invitation = null;
  let stream = null;
  let session = null;

  const show = (state, message) => {
    view.state = state;
    el.dataset.state = state;
    el.hidden = state === 'idle';
    text.textContent = message;
    accept.hidden = !(state === 'invited' || state === 'error');
    accept.textContent = state === 'error' ? 'Try again' : 'Join the stage';
    decline.hidden = !(state === 'invited' || state === 'error');
    leave.hidden = state !== 'on_stage';
    preview.hidden = !(state === 'joining' || state === 'on_stage');
    onChange(state);
  };

  const stopMedia = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    preview.srcObject = null;
  };

  async function join() {
    if (!invitation || view.state === 'joining' || view.state === 'on_stage') return;
    show('joining', 'Starting your camera and microphone…');
    try {
      stream = await navigator.mediaDevices.getUserMedia(CAMERA);
    } catch (e) {
      show('error', `The camera or microphone was refused (${e.name || e.message}). Allow them and try again.`);
      return;
    }
    preview.srcObject = stream;
    try {
      const url = `/whip/${encodeURIComponent(room)}?presenter=${encodeURIComponent(invitation.presenter)}`;
      session = await publish(url, stream, invitation.token);
    } catch (e) {
      stopMedia();
      show('error', `Could not join the stage: ${e.message}`);
      return;
    }
    const pc = session.pc;
    view.presenter = invitation.presenter;
    view.resource = session.resource;
    pc.addEventListener('connectionstatechange', () => {
      view.connection = pc.connectionState;
      // The server ended the session (the host removed us, or the network went): back to watching.
      if (session?.pc === pc && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) {
        dropBack('The connection to the stage ended.', 'connection');
      }
    });
    show('on_stage', 'You are on the stage: the host sees and hears you, and may put you on the program.');
  }

  function refuse() {
    if (!invitation) return;
    invitation = null;
    stopMedia();
    show('idle', '');
    report(send({ type: 'chat_send', text: 'declined the invitation to the stage', visibility: 'moderators' })).catch(() => {});
  }

  // Ends our side: the WHIP session (DELETE, unless the server ended it) and the tracks.
  async function quit(message, reason = 'left') {
    const ending = session;
    session = null;
    invitation = null;
    if (ending) {
      if (reason === 'left') await ending.stop(); else ending.pc.close();
    }
    stopMedia();
    view.reason = reason;
    view.resource = null;
    show('watching', message);
  }

  function dropBack(message, reason) {
    if (view.state === 'on_stage' || view.state === 'joining') quit(message, reason);
  }

  // Counts the preview's frames (a cheap "the camera runs" for tests).
  if (preview.requestVideoFrameCallback) {
    const onFrame = () => { view.frames += 1; preview.requestVideoFrameCallback(onFrame); };
    preview.requestVideoFrameCallback(onFrame);
  }

  return {
    el,
    // `stage_invitation` from the WebSocket.
    invited(message) {
      if (view.state === 'on_stage' || view.state === 'joining') return;
      invitation = message;
      view.presenter = message.presenter;
      show('invited', 'The host invites you to the stage, with your camera and microphone.');
    },
    // Messages without seq: the host took a presenter off, or revoked this attendee.
    notice(message) {
      if (message.type === 'presenter_removed' && message.presenter === view.presenter) {
        dropBack('The host took you off the stage. You are watching the program again.', 'removed');
      } else if (message.type === 'removed') {
        dropBack('You were removed from the room.', 'revoked');
      }
    },
  };
}
