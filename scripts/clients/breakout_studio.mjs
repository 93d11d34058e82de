#!/usr/bin/env node
// Drives the studio's breakout controls (Debian's Chromium) for tests/breakout_studio.rs: splits
// the attendees into --rooms rooms for one minute, waits for the list, visits the first room
// (its view with the host token) until its chat shows --chat, then ends the breakouts.
// Prints one JSON line per step:
//   {"step":"split","rooms":[{"id","members":[names]}]}
//   {"step":"visited","breakout","chat":[texts]}
//   {"step":"ended","rooms":n,"visiting":bool}
//
//   node breakout_studio.mjs <studio URL with #token=…&nostage> --rooms N --chat TEXT --seconds S
import { launch } from './chromium.mjs';

const [url, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : fallback;
};
const timeout = Number(option('seconds', 90)) * 1000;
const say = (o) => console.log(JSON.stringify(o));

const chromium = await launch({ fakeMedia: true });
try {
  const page = await chromium.context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page: ${m.text()}\n`); });
  await page.goto(url);
  await page.waitForFunction(() => window.townhallStudio?.connected, null, { timeout });
  await page.fill('#breakouts input[aria-label=Rooms]', option('rooms', '1'));
  await page.fill('#breakouts input[aria-label=Minutes]', '1');
  await page.click('#breakouts button[type=submit]');
  await page.waitForSelector('#breakouts .breakout-list li', { timeout });
  const rooms = await page.$$eval('#breakouts .breakout-list li', (items) => items.map((li) => ({
    id: li.dataset.id, members: li.querySelector('p').textContent.split(', '),
  })));
  say({ step: 'split', rooms });

  await page.click('#breakouts .breakout-list li:first-child button');
  await page.waitForFunction((text) => window.townhallBreakout?.chat().includes(text), option('chat', ''), { timeout, polling: 200 });
  say({ step: 'visited', breakout: await page.evaluate(() => window.townhallBreakout.id), chat: await page.evaluate(() => window.townhallBreakout.chat()) });

  await page.click('#breakouts h2 button.danger');
  await page.waitForFunction(() => !document.querySelector('#breakouts .breakout-list li') && !window.townhallBreakout, null, { timeout, polling: 200 });
  say({ step: 'ended', rooms: await page.$$eval('#breakouts .breakout-list li', (l) => l.length), visiting: await page.evaluate(() => !!window.townhallBreakout) });
} finally {
  await chromium.close();
}
