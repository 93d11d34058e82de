// The attendees' registration page (/register/{room}): reads the event from
// GET /api/rooms/{room}/event (public, no token), shows it (name, date and time in the viewer's
// locale with the duration, description), and a form with name, e-mail and the room's custom
// fields (required ones marked and `required`). The form is posted as JSON to
// POST /api/rooms/{room}/registrations; on success the page shows the status (approved or
// pending approval), the personal join link ("Join the event"), "Add to calendar" (the .ics)
// and a note to keep the link; on error the problem's `detail` next to the form, which keeps
// what was typed. User text only ever goes into textContent.
//
// window.townhallRegister: {event, registration, error} for tests.
import { h } from './panels.js';

const room = document.body.dataset.room;
const $ = (id) => document.getElementById(id);
const state = { event: null, registration: null, error: null };
window.townhallRegister = state;

// "1 h 30 min", "45 min", "2 h".
function duration(min) {
  const hours = Math.floor(min / 60);
  const rest = min % 60;
  return [hours ? `${hours} h` : '', rest ? `${rest} min` : ''].filter(Boolean).join(' ');
}

// When the event is, in the viewer's locale and time zone.
function when(event) {
  if (!event.starts_at) return null;
  const start = new Date(event.starts_at);
  const end = new Date(start.getTime() + event.duration_min * 60_000);
  const day = start.toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  const time = (d) => d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  const zone = new Intl.DateTimeFormat([], { timeZoneName: 'short' }).formatToParts(start)
    .find((p) => p.type === 'timeZoneName')?.value ?? '';
  return h('p', { class: 'when', id: 'event-when' },
    h('time', { dateTime: event.starts_at }, day), ' ',
    h('span', { class: 'hours' }, `${time(start)}–${time(end)} ${zone}`),
    h('span', { class: 'muted' }, ` (${duration(event.duration_min)})`));
}

const phaseNotes = {
  green_room: 'Starting soon',
  live: 'Live now',
  ended: 'This event has ended: registrants can watch the replay.',
};

const closedTexts = {
  registration_full: 'Registration is full: every place is taken.',
  registration_closed: 'Registration is closed: this event ended some time ago.',
};

function showEvent(event) {
  document.title = `Register · ${event.name} · townhall`;
  const note = phaseNotes[event.phase];
  // In a wrapper: `h` leaves out the null children (replaceChildren would write "null").
  $('event').replaceChildren(h('div', {},
    h('p', { class: 'muted eyebrow' }, 'Webinar registration'),
    h('h1', { id: 'event-name' }, event.name),
    when(event) ?? (event.phase === 'scheduled' ? h('p', { class: 'muted', id: 'event-when' }, 'The date will be announced.') : null),
    note ? h('p', { class: 'tag', 'data-phase': event.phase, id: 'event-phase' }, note) : null,
    event.description ? h('p', { class: 'description', id: 'event-description' }, event.description) : null,
    event.registration.approval ? h('p', { class: 'muted' }, 'The host approves each registration.') : null,
  ));
}

// One labelled input; required ones get a marker and `required`.
function field({ name, label, type = 'text', required, autocomplete, maxLength }) {
  const input = h('input', { id: `field-${name}`, name, type, required, autocomplete, maxLength });
  const el = h('label', { class: 'field', for: input.id },
    h('span', {}, label, required ? h('span', { class: 'required', title: 'required', 'aria-hidden': 'true' }, ' *') : null),
    input);
  return { el, input, name };
}

function showForm(event) {
  const form = $('register');
  form.hidden = false;
  if (!event.registration_open) {
    form.replaceChildren(h('h2', {}, 'Registration'),
      h('p', { class: 'error', id: 'closed', 'data-reason': event.closed_reason ?? '' },
        closedTexts[event.closed_reason] ?? 'Registration is not open.'));
    return;
  }
  const base = [
    field({ name: 'name', label: 'Your name', required: true, autocomplete: 'name', maxLength: 64 }),
    field({ name: 'email', label: 'E-mail address', type: 'email', required: true, autocomplete: 'email', maxLength: 254 }),
  ];
  const custom = event.registration.fields.map((f) =>
    field({ name: f.name, label: f.label || f.name, required: f.required, maxLength: 500 }));
  const error = h('p', { class: 'error', id: 'register-error', role: 'alert' });
  const submit = h('button', { class: 'primary', type: 'submit', id: 'register-submit' }, 'Register');
  const all = [...base, ...custom];
  const el = h('form', { id: 'register-form', onsubmit: (e) => {
    e.preventDefault();
    const body = { name: base[0].input.value.trim(), email: base[1].input.value.trim(), fields: {} };
    for (const f of custom) if (f.input.value.trim()) body.fields[f.name] = f.input.value.trim();
    submit.disabled = true;
    submit.textContent = 'Registering…';
    send(body).then((registration) => showRegistered(registration), (problem) => {
      state.error = problem;
      const detail = problem.detail || problem.title || 'Registration failed.';
      error.textContent = detail[0].toUpperCase() + detail.slice(1);
      error.dataset.code = problem.code ?? '';
      // The field the problem is about, when it says.
      const about = ['invalid_email', 'already_registered'].includes(problem.code) ? 'email' : problem.code === 'bad_name' ? 'name'
        : custom.find((f) => (problem.detail ?? '').includes(`"${f.name}"`))?.name;
      for (const f of all) {
        if (f.name === about) f.input.setAttribute('aria-invalid', 'true');
        else f.input.removeAttribute('aria-invalid');
      }
      all.find((f) => f.name === about)?.input.focus();
    }).finally(() => { submit.disabled = false; submit.textContent = 'Register'; });
  } },
  ...all.map((f) => f.el),
  h('p', { class: 'muted' }, h('span', { class: 'required' }, '*'), ' required'),
  error,
  submit);
  form.replaceChildren(h('h2', {}, 'Register'), el);
}

async function send(body) {
  const response = await fetch(`/api/rooms/${encodeURIComponent(room)}/registrations`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw json;
  return json;
}

function showRegistered(registration) {
  state.registration = registration;
  state.error = null;
  $('register').hidden = true;
  const approved = registration.status === 'approved';
  const link = h('input', { id: 'join-url', readOnly: true, value: registration.join_url, 'aria-label': 'Your personal join link' });
  const copy = h('button', { type: 'button', class: 'small', onclick: async () => {
    link.select();
    try { await navigator.clipboard.writeText(registration.join_url); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select and copy'; }
  } }, 'Copy');
  $('registered').hidden = false;
  $('registered').dataset.status = registration.status;
  $('registered').replaceChildren(
    h('h2', { id: 'registered-status' }, approved ? 'You are registered' : 'Registration received: pending approval'),
    h('p', {}, approved
      ? `Thank you, ${registration.name}. Use the button below to join when the event starts.`
      : `Thank you, ${registration.name}. The host approves each registration; your link lets you in once yours is approved.`),
    h('div', { class: 'row actions-row' },
      h('a', { class: 'button primary', id: 'join-link', href: registration.join_url }, 'Join the event'),
      state.event?.starts_at ? h('a', { class: 'button', id: 'ics-link', href: registration.ics_url, download: `${room}.ics` }, 'Add to calendar') : null),
    h('p', { class: 'note' }, h('strong', {}, 'Keep this link: '),
      'it is your personal entry to the event (anyone who has it joins as you). It is not sent to you by e-mail.'),
    h('div', { class: 'row' }, link, copy),
  );
  $('join-link').focus();
}

async function load() {
  const response = await fetch(`/api/rooms/${encodeURIComponent(room)}/event`);
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    state.error = json;
    $('event').replaceChildren(h('h1', {}, 'No such event'),
      h('p', { class: 'error', id: 'load-error' }, json.detail ?? `HTTP ${response.status}`));
    return;
  }
  state.event = json;
  showEvent(json);
  showForm(json);
}

load().catch((e) => { $('event').replaceChildren(h('p', { class: 'error', id: 'load-error' }, `Could not load the event: ${e.message}`)); });
