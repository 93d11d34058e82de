#!/usr/bin/env node
// Drives Debian's Chromium (playwright-core, fake camera and microphone) against townhall's
// own pages: an independent WebRTC stack publishing over WHIP and playing over WHEP.
//
//   node browser.mjs publish <publish page URL with #token=...> --seconds N
//       Starts the camera+mic publisher, keeps it live for N seconds, then stops (DELETE).
//       Prints {"connection": "...", "frames_sent": n, "moderation": what the page tells the
//       presenter the host did (video off, muted), or null}.
//       With --restart-after S: S seconds in, performs an ICE restart over PATCH and reports
//       {"restart": {"remote_ufrag_before", "remote_ufrag_after", "connection"}} too.
//   node browser.mjs watch <watch page URL> --seconds N [--min-play S]
//       Plays the LL-HLS program with hls.js until S seconds of media played (or N seconds
//       passed). Prints hls.js's view: {"current_time", "latency", "playing_date", "errors", ...}.
//   node browser.mjs play <stage page URL> --min-frames K --seconds N
//       Plays over WHEP and counts decoded frames (requestVideoFrameCallback) until K frames
//       or N seconds. Prints {"decoded_frames": n, "connection": "...", "width": w, "height": h}.
import { launch } from './chromium.mjs';

const [command, url, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const seconds = option('seconds', 10);
const restartAfter = option('restart-after', 0);
const minFrames = option('min-frames', Number.MAX_SAFE_INTEGER);

const chromium = await launch({ fakeMedia: true });
const browser = chromium.context;
const deadline = Date.now() + seconds * 1000;
let result = {};
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page: ${m.text()}\n`); });
  await page.goto(url);
  if (command === 'publish') {
    await page.evaluate(() => window.townhallStart());
    await page.waitForFunction(() => window.townhallSession?.pc.connectionState === 'connected', null, { timeout: 30000 });
    let restart = null;
    if (restartAfter > 0) {
      await page.waitForTimeout(restartAfter * 1000);
      restart = await page.evaluate(async () => {
        const ufrag = () => window.townhallSession.pc.currentRemoteDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
        const before = ufrag();
        await window.townhallSession.restartIce();
        const deadline = Date.now() + 20000;
        while (window.townhallSession.pc.iceConnectionState !== 'connected' && window.townhallSession.pc.iceConnectionState !== 'completed' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
        }
        return { remote_ufrag_before: before, remote_ufrag_after: ufrag(), connection: window.townhallSession.pc.connectionState };
      });
    }
    while (Date.now() < deadline) await page.waitForTimeout(200);
    result = await page.evaluate(async () => {
      const stats = await window.townhallSession.pc.getStats();
      let framesSent = 0;
      stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') framesSent = s.framesSent; });
      const connection = window.townhallSession.pc.connectionState;
      const notice = document.getElementById('moderation');
      const moderation = notice && !notice.hidden ? notice.textContent : null;
      await window.townhallSession.stop();
      return { connection, frames_sent: framesSent, moderation };
    });
    if (restart) result.restart = restart;
  } else if (command === 'play') {
    await page.waitForFunction(() => window.townhallSession?.pc.connectionState === 'connected', null, { timeout: 30000 });
    while (Date.now() < deadline) {
      const frames = await page.evaluate(() => window.townhallFrames);
      if (frames >= minFrames) break;
      await page.waitForTimeout(100);
    }
    result = await page.evaluate(async () => {
      const video = document.getElementById('video');
      const out = {
        decoded_frames: window.townhallFrames,
        connection: window.townhallSession.pc.connectionState,
        width: video.videoWidth,
        height: video.videoHeight,
      };
      await window.townhallSession.stop();
      return out;
    });
  } else if (command === 'watch') {
    const minPlay = option('min-play', 5);
    while (Date.now() < deadline) {
      const played = await page.evaluate(() => window.townhallPlayer?.currentTime ?? 0);
      if (played >= minPlay) break;
      await page.waitForTimeout(200);
    }
    result = await page.evaluate(() => {
      const p = window.townhallPlayer;
      return {
        current_time: p.currentTime ?? 0,
        latency: p.latency,
        playing_date: p.playingDate,
        now: Date.now(),
        blocking_reloads: p.blockingReloads,
        part_loads: p.partLoads,
        errors: p.errors,
        fatal: p.fatal,
        ended: p.ended,
      };
    });
  } else {
    throw new Error(`unknown command ${command}: use publish, play or watch`);
  }
} finally {
  await chromium.close();
}
console.log(JSON.stringify(result));
