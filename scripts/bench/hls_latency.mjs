#!/usr/bin/env node
// LL-HLS glass-to-glass latency: a canvas timecode published over WHIP (as stage_latency.mjs)
// and watched by hls.js (lowLatencyMode) in a second page of the same browser; every frame the
// video element presents is read back and compared with Date.now(). Also samples hls.latency.
//
//   node scripts/bench/hls_latency.mjs <server base URL> <room> <publish token> [seconds]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, room, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 60);
const profile = mkdtempSync(join(tmpdir(), 'townhall-hls-latency-'));
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
    setInterval(() => {
      const now = Date.now();
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, 640, 360);
      for (let i = 0; i < BITS; i++) {
        ctx.fillStyle = Math.floor(now / 2 ** i) % 2 ? '#fff' : '#000';
        ctx.fillRect((i % 21) * 30 + 5, Math.floor(i / 21) * 30 + 5, 30, 30);
      }
    }, 5);
    const stream = canvas.captureStream(30);
    const ac = new AudioContext();
    const osc = ac.createOscillator();
    const dest = ac.createMediaStreamDestination();
    osc.connect(dest); osc.start();
    stream.addTrack(dest.stream.getAudioTracks()[0]);
    window.session = await publish(`/whip/${room}?presenter=clock`, stream, token);
  }, { room, token, BITS });

  const viewer = await browser.newPage();
  await viewer.goto(`${base}/watch/${room}`);
  await viewer.waitForFunction(() => window.townhallHls && document.getElementById('video').currentTime > 1, null, { timeout: 90000 });
  await viewer.evaluate(({ BITS }) => {
    const video = document.getElementById('video');
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.samples = []; window.hlsLatency = []; window.undecodable = 0;
    const onFrame = () => {
      const received = Date.now();
      ctx.drawImage(video, 0, 0, 640, 360);
      let drawn = 0; let valid = true;
      for (let i = 0; i < BITS; i++) {
        const [r, g, b] = ctx.getImageData((i % 21) * 30 + 20, Math.floor(i / 21) * 30 + 20, 1, 1).data;
        const y = (r + g + b) / 3;
        if (y > 80 && y < 176) valid = false;
        if (y >= 128) drawn += 2 ** i;
      }
      const latency = received - drawn;
      if (valid && latency >= 0 && latency < 30000) window.samples.push(latency); else window.undecodable += 1;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    setInterval(() => { if (Number.isFinite(window.townhallHls.latency)) window.hlsLatency.push(window.townhallHls.latency * 1000); }, 500);
  }, { BITS });
  await viewer.waitForTimeout(10000); // settle at the live edge
  await viewer.evaluate(() => { window.samples = []; window.hlsLatency = []; window.undecodable = 0; });
  await viewer.waitForTimeout(seconds * 1000);
  const { samples, hlsLatency, undecodable } = await viewer.evaluate(() => ({ samples: window.samples, hlsLatency: window.hlsLatency, undecodable: window.undecodable }));
  const pct = (values, p) => { const v = [...values].sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]; };
  console.log(JSON.stringify({ seconds, frames: samples.length, undecodable, p50_ms: pct(samples, 50), p95_ms: pct(samples, 95), hls_latency_p50_ms: Math.round(pct(hlsLatency, 50)) }));
  await publisher.evaluate(() => window.session.stop());
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
