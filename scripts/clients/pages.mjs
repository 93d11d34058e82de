#!/usr/bin/env node
// Drives townhall's pages in headless Chromium (playwright-core, Debian's Chromium, fake camera
// and microphone that grant themselves) for end-to-end tests that act as several people at
// once: each named page lives in its own browser context (its own storage, so the studio and
// an attendee do not share an identity). Commands come one JSON object per line on stdin; each
// gets one JSON line on stdout: {"ok": true, "value": …} or {"ok": false, "error": "…"}.
//
//   {"op":"open","page":"studio","url":"…","width":1280,"height":800}
//   {"op":"click","page":"…","selector":"…"}          playwright selector, waits until clickable
//   {"op":"fill","page":"…","selector":"…","value":"…"} types into an input (replacing its text)
//   {"op":"wait","page":"…","expr":"…","timeout":ms}  until the JS expression is truthy; its value
//   {"op":"eval","page":"…","expr":"…"}               the JS expression's value
//   {"op":"viewport","page":"…","width":w,"height":h}
//   {"op":"screenshot","page":"…","path":"…"}        PNG of the viewport
//   {"op":"reload","page":"…"}                        reloads the page (same context and storage)
//   {"op":"close"}                                    closes the browser and exits
//
// Page errors and console errors go to stderr, prefixed with the page's name. confirm() dialogs
// are accepted, as by a user who clicks OK.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  ],
});
const pages = new Map();
const page = (name) => {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}: open it first`);
  return p;
};

async function run(c) {
  const timeout = c.timeout ?? 30000;
  switch (c.op) {
    case 'open': {
      const context = await browser.newContext({ viewport: { width: c.width ?? 1280, height: c.height ?? 800 } });
      await context.grantPermissions(['camera', 'microphone']);
      const p = await context.newPage();
      p.on('pageerror', (e) => process.stderr.write(`${c.page}: page error: ${e.message}\n`));
      p.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`${c.page}: ${m.text()}\n`); });
      p.on('dialog', (d) => d.accept());
      pages.set(c.page, p);
      await p.goto(c.url);
      return null;
    }
    case 'click':
      await page(c.page).click(c.selector, { timeout });
      return null;
    case 'fill':
      await page(c.page).fill(c.selector, c.value, { timeout });
      return null;
    case 'wait': {
      const handle = await page(c.page).waitForFunction(c.expr, null, { timeout, polling: 100 });
      return await handle.jsonValue();
    }
    case 'eval':
      return await page(c.page).evaluate(c.expr);
    case 'viewport':
      await page(c.page).setViewportSize({ width: c.width, height: c.height });
      return null;
    case 'reload':
      await page(c.page).reload();
      return null;
    case 'screenshot':
      await page(c.page).screenshot({ path: c.path, timeout });
      return c.path;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: `not JSON: ${e.message}` }));
    continue;
  }
  if (command.op === 'close') break;
  try {
    console.log(JSON.stringify({ ok: true, value: (await run(command)) ?? null }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: e.message.split('\n')[0] }));
  }
}
await browser.close();
console.log(JSON.stringify({ ok: true, value: 'closed' }));
