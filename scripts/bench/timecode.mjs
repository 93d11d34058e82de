// Glass-to-glass timecode for the latency benchmarks: the publisher page draws Date.now() as
// 42 black/white blocks on a canvas and publishes canvas.captureStream(30) over WHIP; a viewer
// page reads the blocks back from every frame its <video> presents and records Date.now()
// minus the time drawn. Both pages are on one machine (one clock).

// Publishes the timecode from `page` (on the server's origin) as presenter "clock".
export async function publishClock(page, room, token, { audio = false } = {}) {
  await page.evaluate(async ({ room, token, audio }) => {
    const { publish } = await import('/assets/whip.js');
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    document.body.appendChild(canvas);
    const ctx = canvas.getContext('2d');
    setInterval(() => {
      const now = Date.now();
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, 640, 360);
      for (let i = 0; i < 42; i++) {
        ctx.fillStyle = Math.floor(now / 2 ** i) % 2 ? '#fff' : '#000';
        ctx.fillRect((i % 21) * 30 + 5, Math.floor(i / 21) * 30 + 5, 30, 30);
      }
      ctx.fillStyle = `hsl(${(now / 10) % 360}, 80%, 50%)`;
      ctx.fillRect((now / 5) % 600, 200, 40, 40);
    }, 5);
    const stream = canvas.captureStream(30);
    if (audio) {
      const ac = new AudioContext();
      const osc = ac.createOscillator();
      const dest = ac.createMediaStreamDestination();
      osc.connect(dest);
      osc.start();
      stream.addTrack(dest.stream.getAudioTracks()[0]);
    }
    window.clockSession = await publish(`/whip/${room}?presenter=clock`, stream, token);
  }, { room, token, audio });
}

// Starts reading the timecode from the <video> matching `selector` in `page`.
export async function readClock(page, selector) {
  await page.evaluate((selector) => {
    const video = document.querySelector(selector);
    const canvas = document.createElement('canvas');
    canvas.width = 640; canvas.height = 360;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.clockSamples = [];
    window.clockUndecodable = 0;
    const onFrame = () => {
      const received = Date.now();
      ctx.drawImage(video, 0, 0, 640, 360);
      let drawn = 0;
      let valid = true;
      for (let i = 0; i < 42; i++) {
        const [r, g, b] = ctx.getImageData((i % 21) * 30 + 20, Math.floor(i / 21) * 30 + 20, 1, 1).data;
        const y = (r + g + b) / 3;
        if (y > 80 && y < 176) valid = false;
        if (y >= 128) drawn += 2 ** i;
      }
      const latency = received - drawn;
      if (valid && latency >= 0 && latency < 30000) window.clockSamples.push(latency); else window.clockUndecodable += 1;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }, selector);
}

// Forgets what was read so far (after warming up).
export async function resetClock(page) {
  await page.evaluate(() => { window.clockSamples = []; window.clockUndecodable = 0; });
}

// What was read: { frames, undecodable, p50_ms, p95_ms, min_ms, max_ms }.
export async function clockResult(page) {
  const { samples, undecodable } = await page.evaluate(() => ({ samples: window.clockSamples, undecodable: window.clockUndecodable }));
  return { frames: samples.length, undecodable, p50_ms: percentile(samples, 50), p95_ms: percentile(samples, 95), min_ms: percentile(samples, 0), max_ms: percentile(samples, 100) };
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
