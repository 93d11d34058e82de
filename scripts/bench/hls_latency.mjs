#!/usr/bin/env node
// LL-HLS glass-to-glass latency: the timecode of timecode.mjs (with a tone, so the program has
// audio) published over WHIP and watched on the watch page (hls.js, low-latency mode) in a
// second page of the same browser. Also samples hls.js's own `latency`.
//
//   node scripts/bench/hls_latency.mjs <server base URL> <room> <publish token> [seconds]
import { launch } from '../clients/chromium.mjs';
import { clockResult, percentile, publishClock, readClock, resetClock } from './timecode.mjs';

const [base, room, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 60);
const chromium = await launch();
try {
  const publisher = await chromium.context.newPage();
  await publisher.goto(`${base}/stage/${room}`);
  await publishClock(publisher, room, token, { audio: true });

  const viewer = await chromium.context.newPage();
  await viewer.goto(`${base}/watch/${room}`);
  await viewer.waitForFunction(() => window.townhallHls && document.getElementById('video').currentTime > 1, null, { timeout: 90000 });
  await readClock(viewer, '#video');
  await viewer.evaluate(() => {
    window.hlsLatency = [];
    setInterval(() => { if (Number.isFinite(window.townhallHls.latency)) window.hlsLatency.push(window.townhallHls.latency * 1000); }, 500);
  });
  await viewer.waitForTimeout(10000); // settle at the live edge
  await resetClock(viewer);
  await viewer.evaluate(() => { window.hlsLatency = []; });
  await viewer.waitForTimeout(seconds * 1000);
  const hlsLatency = await viewer.evaluate(() => window.hlsLatency);
  console.log(JSON.stringify({ seconds, ...(await clockResult(viewer)), hls_latency_p50_ms: Math.round(percentile(hlsLatency, 50)) }));
  await publisher.evaluate(() => window.clockSession.stop());
} finally {
  await chromium.close();
}
