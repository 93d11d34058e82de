#!/usr/bin/env node
// Drives the attendee's watch page (Debian's Chromium, fake camera and microphone, a phone-size
// viewport) through a breakout move, for tests/breakout_page.rs. Prints one JSON line per step
// as it happens, so the test can act in between:
//   {"step":"welcomed","participant":"a-…"}          the page joined the main room
//   {"step":"in_breakout","breakout","published","frames","chat","layout_hidden","overflow"}
//        once it publishes its camera, decoded --min-frames of a room-mate and shows --chat
//        (it then sends "hi from the page" in the room's chat; a screenshot goes to --shot)
//   {"step":"back","layout_hidden","breakout"}        the program view is back
//
//   node breakout_page.mjs <watch page URL> --chat TEXT --min-frames K --seconds N [--shot FILE]
import { launch } from './chromium.mjs';

const [url, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : fallback;
};
const chat = option('chat', '');
const minFrames = Number(option('min-frames', 10));
const timeout = Number(option('seconds', 120)) * 1000;
const shot = option('shot', null);
const say = (o) => console.log(JSON.stringify(o));

const chromium = await launch({ fakeMedia: true });
try {
  const page = await chromium.context.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page: ${m.text()}\n`); });
  await page.goto(url);
  await page.waitForFunction(() => window.townhallInteraction?.socket?.participant, null, { timeout });
  say({ step: 'welcomed', participant: await page.evaluate(() => window.townhallInteraction.socket.participant.participant_id) });

  await page.waitForFunction(({ text, min }) => {
    const b = window.townhallBreakout;
    return b && b.published && Object.values(b.frames).some((n) => n >= min) && b.chat().includes(text);
  }, { text: chat, min: minFrames }, { timeout, polling: 200 });
  const inside = await page.evaluate(() => ({
    breakout: window.townhallBreakout.id,
    published: window.townhallBreakout.published,
    frames: window.townhallBreakout.frames,
    chat: window.townhallBreakout.chat(),
    layout_hidden: document.querySelector('.layout').hidden,
    // Phone size: nothing wider than the screen.
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  }));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  await page.fill('.breakout #chat input', 'hi from the page');
  await page.click('.breakout #chat button[type=submit]');
  say({ step: 'in_breakout', ...inside });

  await page.waitForFunction(() => !window.townhallBreakout && !document.querySelector('.layout').hidden, null, { timeout, polling: 200 });
  say({ step: 'back', layout_hidden: await page.evaluate(() => document.querySelector('.layout').hidden), breakout: null });
} finally {
  await chromium.close();
}
