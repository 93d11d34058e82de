#!/usr/bin/env node
// Checks HLS playlists the way a strict client would: npm hls-parser in strict mode (it throws
// on LL-HLS rule violations), then townhall's own rules on top, read from the text:
//   live (and blocking, delta): PART-HOLD-BACK >= 3 x PART-TARGET, exactly one PRELOAD-HINT,
//     a PROGRAM-DATE-TIME on every segment, parts <= PART-TARGET and >= 85 % of it except the
//     last part of a segment;
//   replay: PROGRAM-DATE-TIME on every segment, EXT-X-PLAYLIST-TYPE, ENDLIST once ended.
//
//   node check_playlist.mjs <kind: live|replay> <file>...
// Prints {"checked": n, "problems": [...]} and exits 1 if there is any problem.
import HLS from 'hls-parser';
import { readFileSync } from 'node:fs';

HLS.setOptions({ strictMode: true });
const [kind, ...files] = process.argv.slice(2);
const problems = [];

for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const say = (what) => problems.push(`${file}: ${what}`);
  try {
    const parsed = HLS.parse(text);
    if (!parsed.isMasterPlaylist && parsed.segments === undefined) say('no segments parsed');
  } catch (e) {
    say(`hls-parser (strict): ${e.message}`);
  }
  const lines = text.split('\n');
  const attr = (line, name) => {
    const m = line.match(new RegExp(`${name}=([^,]+)`));
    return m ? Number(m[1]) : NaN;
  };
  // Every segment (EXTINF) must have been preceded by a PDT since the previous segment.
  let pdtSinceLast = false;
  let segments = 0;
  for (const line of lines) {
    if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdtSinceLast = true;
    if (line.startsWith('#EXTINF:')) {
      segments += 1;
      if (!pdtSinceLast) say(`segment ${segments} has no PROGRAM-DATE-TIME`);
      pdtSinceLast = false;
    }
  }
  if (kind === 'live') {
    const partInf = lines.find((l) => l.startsWith('#EXT-X-PART-INF:'));
    const control = lines.find((l) => l.startsWith('#EXT-X-SERVER-CONTROL:'));
    if (!partInf || !control) { say('no PART-INF or SERVER-CONTROL'); continue; }
    const target = attr(partInf, 'PART-TARGET');
    const holdBack = attr(control, 'PART-HOLD-BACK');
    if (!(holdBack >= 3 * target - 1e-9)) say(`PART-HOLD-BACK ${holdBack} < 3 x PART-TARGET ${target}`);
    const hints = lines.filter((l) => l.startsWith('#EXT-X-PRELOAD-HINT:')).length;
    if (hints !== 1) say(`${hints} PRELOAD-HINTs`);
    // Parts grouped by segment: all but the last of a complete segment fill 85-100 %.
    let parts = [];
    const checkParts = (complete) => {
      parts.forEach((d, i) => {
        if (d > target + 1e-6) say(`part of ${d} s > PART-TARGET ${target}`);
        const last = complete && i === parts.length - 1;
        if (!last && d < 0.85 * target - 1e-6) say(`part of ${d} s < 85 % of PART-TARGET ${target}`);
      });
      parts = [];
    };
    for (const line of lines) {
      if (line.startsWith('#EXT-X-PART:')) parts.push(attr(line, 'DURATION'));
      if (line.startsWith('#EXTINF:')) checkParts(true);
    }
    // Parts of the open segment: none is known to be its last.
    checkParts(false);
  } else if (kind === 'replay') {
    if (!lines.some((l) => l.startsWith('#EXT-X-PLAYLIST-TYPE:'))) say('no PLAYLIST-TYPE');
    if (lines.some((l) => l === '#EXT-X-PLAYLIST-TYPE:VOD') && !lines.includes('#EXT-X-ENDLIST')) say('VOD without ENDLIST');
  }
}
console.log(JSON.stringify({ checked: files.length, problems }));
process.exit(problems.length ? 1 : 0);
