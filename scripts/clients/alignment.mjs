#!/usr/bin/env node
// Interaction on the media clock, measured in a browser (tests/alignment.rs): a presenter
// publishes the canvas timecode of scripts/bench/timecode.mjs (each frame shows the Date.now()
// it was drawn at, i.e. its capture time ≈ its program time). For each delivery path alone
// (`?source=ws`, `daterange`, `emsg`), a watch page in headless Chromium (hls.js, low-latency
// mode) plays the program, the host opens a poll over the REST API (its `at` is program time at
// the live edge), and the page shows it when its playingDate reaches `at`. At that moment (the
// page's `townhall:shown` event, fired synchronously) the probe draws the <video>'s current
// frame and decodes its timecode: the capture time on screen. The page votes through its form,
// the host closes the poll, the page must show the final results by the same path. The replay
// (`?replay`), seeked to just before the first poll, must show it at the same media time. Then
// the studio moderates (hand queue, poll builder, export). Screenshots go to <out dir>.
//
//   node scripts/clients/alignment.mjs <base URL> <room> <publish token> <host token> <out dir>
// Prints one JSON line: {poll, paths: {ws: {...}, daterange: {...}, emsg: {...}}, replay: {...}, ...}.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './chromium.mjs';
import { publishClock } from '../bench/timecode.mjs';

const [base, room, publishToken, hostToken, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const LONG = { timeout: 120000 };
const log = (...a) => process.stderr.write(`alignment: ${a.join(' ')}\n`);

async function command(body) {
  const r = await fetch(`${base}/api/rooms/${room}/commands`, {
    method: 'POST', headers: { Authorization: `Bearer ${hostToken}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${body.type}: ${r.status} ${JSON.stringify(json)}`);
  return json.events;
}

// Records, for every release of the page, the timecode of the frame on screen at that moment;
// and, for every frame presented, playingDate minus the frame's timecode (the player clock's
// own error against the capture clock).
async function installProbe(page) {
  await page.evaluate(() => {
    const video = document.getElementById('video');
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const decode = () => {
      ctx.drawImage(video, 0, 0, 640, 360);
      let drawn = 0;
      for (let i = 0; i < 42; i++) {
        const [r, g, b] = ctx.getImageData((i % 21) * 30 + 20, Math.floor(i / 21) * 30 + 20, 1, 1).data;
        const y = (r + g + b) / 3;
        if (y > 80 && y < 176) return null;
        if (y >= 128) drawn += 2 ** i;
      }
      return drawn;
    };
    window.probe = { shown: [], clockError: [] };
    document.addEventListener('townhall:shown', (e) => {
      window.probe.shown.push({ ...e.detail, onScreen: decode(), currentTime: video.currentTime });
    });
    const onFrame = () => {
      const screen = decode();
      const date = window.townhallInteraction.clock();
      if (screen != null && date != null) window.probe.clockError.push(date - screen);
      if (window.probe.clockError.length > 600) window.probe.clockError.shift();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
}

const median = (v) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };

async function shownOf(page, type, id, afterPerf = 0) {
  await page.waitForFunction(({ type, id, afterPerf }) => window.probe?.shown.some((s) => s.type === type && s.id === id && s.perfNow >= afterPerf), { type, id, afterPerf }, LONG);
  return page.evaluate(({ type, id, afterPerf }) => {
    const s = window.probe.shown.find((x) => x.type === type && x.id === id && x.perfNow >= afterPerf);
    return { ...s, clockError: window.probe.clockError.slice(-300) };
  }, { type, id, afterPerf });
}

function measure(s, at) {
  return {
    path: s.path,
    at,
    playing_date_minus_at_ms: s.playingDate - at,
    on_screen_minus_at_ms: s.onScreen == null ? null : s.onScreen - at,
    player_clock_error_p50_ms: median(s.clockError),
    player_clock_error_min_ms: Math.min(...s.clockError),
    player_clock_error_max_ms: Math.max(...s.clockError),
    frames: s.clockError.length,
  };
}

const chromium = await launch();
const result = { paths: {} };
try {
  const context = chromium.context;
  const publisher = await context.newPage();
  await publisher.goto(`${base}/stage/${room}`);
  await publishClock(publisher, room, publishToken);
  log('publishing the timecode');

  // One watch page at a time, in front (a background tab gets no animation frames), each with
  // its own poll: ?source=ws, then daterange, then emsg.
  const openWatch = async (query, label) => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.bringToFront();
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) log(`${label}: ${m.text()}`); });
    page.on('pageerror', (e) => log(`${label} error: ${e.message}`));
    await page.goto(`${base}/watch/${room}${query}`);
    return page;
  };
  const pollState = (page, id) => page.evaluate((id) => {
    const p = window.townhallInteraction.state.polls.get(id);
    return { state: p?.state, counts: p?.counts, voters: p?.voters, my_vote: p?.my_vote, error: document.querySelector('#panels .error')?.textContent };
  }, id);
  result.final = {};
  result.polls = {};
  const options = ['Yes', 'No', "Can't tell"];
  for (const [n, source] of ['ws', 'daterange', 'emsg'].entries()) {
    const page = await openWatch(`?source=${source}&name=viewer-${source}`, `${source} page`);
    await page.waitForFunction(() => window.townhallHls && document.getElementById('video').currentTime > 4 && window.townhallInteraction.clock() != null, null, LONG);
    await installProbe(page);
    await page.waitForFunction(() => window.probe.clockError.length > 60, null, LONG); // the timecode decodes
    log(`${source} page plays`);

    if (source === 'ws') {
      // Chat, Q&A and a chapter through the page's forms and the host's API.
      await command({ type: 'chapter_start', title: 'Alignment' });
      await page.fill('#chat input', 'Hello from the watch page');
      await page.click('#chat button[type=submit]');
      await page.fill('#qa input', 'Will the slides be shared?');
      await page.click('#qa button[type=submit]');
      await page.waitForFunction(() => document.querySelector('#qa input').value === '', null, LONG); // acked: q1
      await command({ type: 'question_ask', text: 'Is there a recording?' }); // q2, by the host
      await page.waitForSelector('#qa li[data-id=q2]', LONG);
      await page.click('#qa li[data-id=q2] button.vote');
      await page.waitForSelector('#qa li[data-id=q2] button.vote.voted', LONG);
      const [hello] = await command({ type: 'chat_send', text: 'Welcome! The poll comes next.' });
      await command({ type: 'chat_pin', message: hello.id });
      await command({ type: 'question_mark', question: 'q1', status: 'answering' });
      await page.waitForSelector('#qa li.q-answering[data-id=q1]', LONG);
      await page.waitForSelector('#chat .pinned:not([hidden])', LONG);
      // A dropped socket: the page reconnects with since, gets what it missed, once.
      await page.evaluate(() => window.townhallInteraction.socket.ws.close());
      const [missed] = await command({ type: 'chat_send', text: 'Sent while the page was away' });
      await page.waitForSelector(`#chat li[data-id="${missed.id}"]`, LONG);
      result.reconnect = await page.evaluate((seq) => ({
        copies: document.querySelectorAll(`#chat li[data-id="${seq}"]`).length,
        released: window.townhallInteraction.shown.filter((s) => s.seq === seq).length,
      }), missed.id);
      result.qa_order = await page.evaluate(() => [...document.querySelectorAll('#qa li')].map((li) => li.dataset.id));
    }
    if (source === 'daterange') {
      // The question being answered, from its DATERANGE alone.
      await page.waitForFunction(() => window.townhallInteraction.state.answering?.id === 'q1', null, LONG);
      result.answering_from_daterange = true;
    }

    const [created] = await command({ type: 'poll_create', question: `Is the poll on time (${source})?`, options, multiple: source === 'emsg' });
    const [opened] = await command({ type: 'poll_open', poll: created.id });
    result.polls[source] = { id: created.id, at: opened.at, seq: opened.seq };
    const shown = await shownOf(page, 'poll_opened', created.id);
    result.paths[source] = measure(shown, opened.at);
    log(source, JSON.stringify(result.paths[source]));

    // A vote through the page's form: option n (and option 0 too on the multiple-choice one).
    const pick = source === 'emsg' ? [0, n] : [n];
    await page.waitForSelector(`#poll[data-state=open][data-poll=${created.id}] input[value="${n}"]`, LONG);
    for (const i of pick) await page.check(`#poll input[value="${i}"]`);
    await page.click('#poll button[type=submit]');
    await page.waitForFunction(() => !document.querySelector('#panels .error')?.textContent, null, LONG);
    if (source === 'ws') {
      // Live results (poll_results) and the voter's own vote, on the player's clock.
      await page.waitForFunction((id) => window.townhallInteraction.state.polls.get(id)?.voters === 1, created.id, LONG);
      result.live_results = await pollState(page, created.id);
      await page.screenshot({ path: join(outDir, 'watch-desktop.png') });
    }
    const [closed] = await command({ type: 'poll_close', poll: created.id });
    const shownClosed = await shownOf(page, 'poll_closed', created.id);
    result.final[source] = { ...measure(shownClosed, closed.at), event_counts: closed.counts, event_voters: closed.voters, ...(await pollState(page, created.id)) };
    if (source === 'ws') {
      await page.screenshot({ path: join(outDir, 'watch-desktop-final.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForFunction(() => document.querySelector('.layout').getBoundingClientRect().width < 400, null, LONG);
      await page.screenshot({ path: join(outDir, 'watch-phone.png'), fullPage: true });
    }
    await page.close();
  }
  const created = { id: result.polls.ws.id };
  const opened = { at: result.polls.ws.at };
  const closed = { at: result.final.ws.at, counts: result.final.ws.event_counts };

  // The replay, seeked to 4 s before the poll: it must show it at the same media time.
  const replay = await openWatch('?replay', 'replay page');
  await replay.waitForFunction((id) => window.townhallHls && window.townhallInteraction.events?.some((e) => e.type === 'poll_closed' && e.poll === id)
    && document.getElementById('video').readyState >= 3 && window.townhallInteraction.clock() != null, created.id, LONG);
  await installProbe(replay);
  const seekedAt = await replay.evaluate((at) => { window.townhallInteraction.seekToDate(at - 4000); return performance.now(); }, opened.at);
  const s = await shownOf(replay, 'poll_opened', created.id, seekedAt);
  result.replay = measure(s, opened.at);
  const sc = await shownOf(replay, 'poll_closed', created.id, seekedAt);
  result.replay_closed = { ...measure(sc, closed.at), event_counts: closed.counts, counts: await replay.evaluate((id) => window.townhallInteraction.state.polls.get(id).counts, created.id) };
  // Seeking back before the poll: it is gone again (state recomputed as of playingDate).
  await replay.evaluate((at) => window.townhallInteraction.seekToDate(at - 3000), opened.at);
  await replay.waitForFunction((id) => !window.townhallInteraction.state.polls.has(id), created.id, LONG);
  result.replay_seek_back_forgets_poll = true;
  await replay.screenshot({ path: join(outDir, 'replay-desktop.png') });

  if (process.env.TOWNHALL_STUDIO !== '0') {
    const studio = await context.newPage();
    await studio.setViewportSize({ width: 1280, height: 800 });
    studio.on('pageerror', (e) => log(`studio page error: ${e.message}`));
    await studio.goto(`${base}/studio/${room}#token=${hostToken}`);
    await studio.bringToFront();
    await studio.waitForFunction(() => window.townhallStudio?.connected && window.townhallFrames > 10, null, LONG);
    // An attendee raises a hand (a socket of its own in the page); the host invites it.
    await studio.evaluate((room) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${room}?name=Ada`);
      ws.onmessage = (m) => { const msg = JSON.parse(m.data); if (msg.type === 'welcome') ws.send(JSON.stringify({ type: 'hand_raise', nonce: 'h1' })); else if (msg.type === 'ack') resolve(); };
      window.attendeeSocket = ws;
    }), room);
    await studio.waitForSelector('#hand-queue li[data-id] button.primary', LONG);
    await studio.click('#hand-queue li[data-id] button.primary');
    // The invitation takes the hand out of the queue (as on the server) and lists it as sent.
    await studio.waitForSelector('#stage-invited li[data-presenter]', LONG);
    await studio.waitForFunction(() => window.townhallStudio.summary().hands.length === 0, null, LONG);
    // The poll builder: a three-option poll, created and opened, then closed.
    await studio.fill('#polls .poll-builder > input', 'Studio poll?');
    await studio.click('#polls button:has-text("+ option")');
    const fields = studio.locator('#polls .options input');
    await fields.nth(0).fill('Red'); await fields.nth(1).fill('Green'); await fields.nth(2).fill('Blue');
    await studio.click('#polls button:has-text("Create and open")');
    await studio.waitForSelector('#polls li[data-state=open] button.danger', LONG);
    result.studio = await studio.evaluate(() => window.townhallStudio.summary());
    // The export of unanswered questions (fetched with the bearer token).
    const [download] = await Promise.all([studio.waitForEvent('download', LONG), studio.click('#chapters button:has-text("Export")')]);
    const csvPath = join(outDir, 'unanswered.csv');
    await download.saveAs(csvPath);
    result.studio.export = readFileSync(csvPath, 'utf8');
    await studio.screenshot({ path: join(outDir, 'studio-desktop.png'), fullPage: true });
  }
  await publisher.evaluate(() => window.clockSession.stop());
} finally {
  await chromium.close();
}
console.log(JSON.stringify(result));
