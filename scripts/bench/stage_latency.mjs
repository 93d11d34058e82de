#!/usr/bin/env node
// Stage glass-to-glass latency, WHIP → SFU → WHEP, in Chromium.
//
// One Chromium, two pages of the same origin (same clock): the publisher draws Date.now() as
// 42 black/white blocks on a canvas and publishes canvas.captureStream(30) over WHIP; the
// viewer plays the room over WHEP, and for each decoded frame (requestVideoFrameCallback)
// draws it, reads the blocks back and records Date.now() minus the time drawn. p50/p95 over the
// measuring window.
//
//   node scripts/bench/stage_latency.mjs <server base URL> <room> <publish token> [seconds]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, room, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 30);
const profile = mkdtempSync(join(tmpdir(), 'townhall-latency-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  ],
});
const BITS = 42;
try {
  const publisher = await browser.newPage();
  await publisher.goto(`${base}/stage/${room}`);
  await publisher.evaluate(async ({ room, token, BITS }) => {
    const { publish } = await import('/assets/whip.js');
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    document.body.appendChild(canvas);
    const ctx = canvas.getContext('2d');
    const draw = () => {
      const now = Date.now();
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, 640, 360);
      for (let i = 0; i < BITS; i++) {
        const bit = Math.floor(now / 2 ** i) % 2;
        ctx.fillStyle = bit ? '#fff' : '#000';
        ctx.fillRect((i % 21) * 30 + 5, Math.floor(i / 21) * 30 + 5, 30, 30);
      }
      ctx.fillStyle = `hsl(${(now / 10) % 360}, 80%, 50%)`;
      ctx.fillRect((now / 5) % 600, 200, 40, 40);
    };
    setInterval(draw, 5);
    const stream = canvas.captureStream(30);
    window.session = await publish(`/whip/${room}?presenter=clock`, stream, token);
  }, { room, token, BITS });

  const viewer = await browser.newPage();
  await viewer.goto(`${base}/stage/${room}`);
  await viewer.evaluate(async ({ room, BITS }) => {
    const { play } = await import('/assets/whip.js');
    const video = document.createElement('video');
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.samples = [];
    window.undecodable = 0;
    const onFrame = () => {
      const received = Date.now();
      ctx.drawImage(video, 0, 0, 640, 360);
      let drawn = 0;
      let valid = true;
      for (let i = 0; i < BITS; i++) {
        const [r, g, b] = ctx.getImageData((i % 21) * 30 + 20, Math.floor(i / 21) * 30 + 20, 1, 1).data;
        const y = (r + g + b) / 3;
        if (y > 80 && y < 176) valid = false;
        if (y >= 128) drawn += 2 ** i;
      }
      const latency = received - drawn;
      if (valid && latency >= 0 && latency < 10000) window.samples.push(latency); else window.undecodable += 1;
      video.requestVideoFrameCallback(onFrame);
    };
    window.session = await play(`/whep/${room}/clock`);
    video.srcObject = window.session.stream;
    video.requestVideoFrameCallback(onFrame);
  }, { room, BITS });

  // Warm up (keyframe, jitter buffer settling), then measure.
  await viewer.waitForFunction(() => window.samples.length > 30, null, { timeout: 60000 });
  await viewer.evaluate(() => { window.samples = []; window.undecodable = 0; });
  await viewer.waitForTimeout(seconds * 1000);
  const { samples, undecodable } = await viewer.evaluate(() => ({ samples: window.samples, undecodable: window.undecodable }));
  samples.sort((a, b) => a - b);
  const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
  console.log(JSON.stringify({ seconds, frames: samples.length, undecodable, p50_ms: pct(50), p95_ms: pct(95), min_ms: samples[0], max_ms: samples[samples.length - 1] }));
  await viewer.evaluate(() => window.session.stop());
  await publisher.evaluate(() => window.session.stop());
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
