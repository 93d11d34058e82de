#!/usr/bin/env node
// Stage glass-to-glass latency, WHIP → SFU → WHEP, in Chromium: the timecode of timecode.mjs
// published over WHIP and played over WHEP by a second page of the same browser; the figure
// covers capture, encode, packetization, the SFU, the jitter buffer, decode and presentation.
//
//   node scripts/bench/stage_latency.mjs <server base URL> <room> <publish token> [seconds]
import { launch } from '../clients/chromium.mjs';
import { clockResult, publishClock, readClock, resetClock } from './timecode.mjs';

const [base, room, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 30);
const chromium = await launch();
try {
  const publisher = await chromium.context.newPage();
  await publisher.goto(`${base}/stage/${room}`);
  await publishClock(publisher, room, token);

  const viewer = await chromium.context.newPage();
  await viewer.goto(`${base}/stage/${room}`);
  await viewer.evaluate(async (room) => {
    const { play } = await import('/assets/whip.js');
    const video = document.getElementById('video');
    window.clockViewer = await play(`/whep/${room}/clock`);
    video.srcObject = window.clockViewer.stream;
  }, room);
  await readClock(viewer, '#video');
  // Warm up (keyframe, jitter buffer settling), then measure.
  await viewer.waitForFunction(() => window.clockSamples.length > 30, null, { timeout: 60000 });
  await resetClock(viewer);
  await viewer.waitForTimeout(seconds * 1000);
  console.log(JSON.stringify({ seconds, ...(await clockResult(viewer)) }));
  await viewer.evaluate(() => window.clockViewer.stop());
  await publisher.evaluate(() => window.clockSession.stop());
} finally {
  await chromium.close();
}
