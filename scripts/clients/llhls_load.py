#!/usr/bin/env python3
"""LL-HLS load client: many viewers that follow the live edge the way hls.js does in
low-latency mode (RFC 8216bis-17 §6.2.5.2 blocking playlist reload, §4.4.4.9 parts), for a CDN
test or a benchmark. Independent of the server's code: it only reads playlists.

  llhls_load.py URL [--clients 200] [--seconds 20] [--ramp 2] [--start-parts 3]
                    [--timeout 15] [--max-requests 5000]

URL is a multivariant playlist (index.m3u8). Each client, on its own HTTP/1.1 keep-alive
connection:
  1. loads the multivariant playlist, then its first media playlist (plain request);
  2. loads the init section (EXT-X-MAP) and the last --start-parts parts (PART-HOLD-BACK);
  3. asks for the next part with a blocking request `?_HLS_msn=M&_HLS_part=P`, where (M, P)
     is the part after the last one the playlist lists, then loads every part newer than the
     last it has, and again, until --seconds have passed (each client stops by itself; every
     request has a --timeout, and a client makes at most --max-requests).
Clients start spread over --ramp seconds.

Prints one JSON line: {"clients", "seconds", "requests", "requests_by_kind", "errors" (by
status, or exception name), "distinct" (distinct objects by kind: URI with query string),
"cache_status" (X-Cache-Status values seen), "bytes", "blocking_ms" (p50, p95, max),
"parts_per_client" (min, median)}.
"""
import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections import Counter
from urllib.parse import urljoin, urlsplit

import aiohttp

URI = re.compile(r'URI="([^"]+)"')
SKIPPED = re.compile(r"SKIPPED-SEGMENTS=(\d+)")


def parse_media_playlist(text):
    """Returns (parts, segments, map_uri, ended): parts as [(msn, index, uri)], segments as
    [(msn, uri)], in playlist order."""
    media_sequence = 0
    msn = None
    index = 0
    parts, segments = [], []
    map_uri = None
    ended = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-SKIP:"):
            msn = (media_sequence if msn is None else msn) + int(SKIPPED.search(line).group(1))
        elif line.startswith("#EXT-X-MAP:"):
            map_uri = URI.search(line).group(1)
        elif line.startswith("#EXT-X-PART:"):
            msn = media_sequence if msn is None else msn
            parts.append((msn, index, URI.search(line).group(1)))
            index += 1
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line and not line.startswith("#"):
            msn = media_sequence if msn is None else msn
            segments.append((msn, line))
            msn += 1
            index = 0
    return parts, segments, map_uri, ended


def next_part(parts, segments):
    """The part after the last one listed: the one a blocking request asks for."""
    if parts:
        last_msn, last_index, _ = parts[-1]
        if segments and segments[-1][0] == last_msn:
            return last_msn + 1, 0  # its segment is complete: the next segment's first part
        return last_msn, last_index + 1
    if segments:
        return segments[-1][0] + 1, 0
    return None


class Stats:
    def __init__(self):
        self.requests = Counter()
        self.errors = Counter()
        self.distinct = {}
        self.cache_status = Counter()
        self.bytes = 0
        self.blocking_ms = []
        self.parts_per_client = []


class Viewer:
    def __init__(self, stats, session, args, deadline):
        self.stats = stats
        self.session = session
        self.args = args
        self.deadline = deadline
        self.made = 0
        self.parts = 0

    def may_go_on(self):
        return time.monotonic() < self.deadline and self.made < self.args.max_requests

    async def get(self, kind, url):
        """GETs url; returns the body (bytes) or None after counting the error."""
        self.made += 1
        self.stats.requests[kind] += 1
        split = urlsplit(url)
        self.stats.distinct.setdefault(kind, set()).add(split.path + ("?" + split.query if split.query else ""))
        started = time.monotonic()
        try:
            async with self.session.get(url) as response:
                body = await response.read()
                self.stats.cache_status[response.headers.get("X-Cache-Status", "none")] += 1
                if response.status != 200:
                    self.stats.errors[str(response.status)] += 1
                    print(f"llhls_load: {response.status} for {url}: {body[:200]!r}", file=sys.stderr)
                    return None
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.stats.errors[type(e).__name__] += 1
            print(f"llhls_load: {type(e).__name__} for {url}: {e}", file=sys.stderr)
            return None
        if kind == "blocking_playlist":
            self.stats.blocking_ms.append((time.monotonic() - started) * 1000)
        self.stats.bytes += len(body)
        return body

    async def run(self, url):
        body = await self.get("playlist", url)
        if body is None:
            return
        variants = [l.strip() for l in body.decode().splitlines() if l.strip() and not l.startswith("#")]
        if not variants:
            self.stats.errors["no_variant"] += 1
            return
        media = urljoin(url, variants[0])
        body = await self.get("playlist", media)
        if body is None:
            return
        have_map = set()
        last = None  # (msn, index) of the newest part loaded
        while True:
            parts, segments, map_uri, ended = parse_media_playlist(body.decode())
            if map_uri and map_uri not in have_map and self.may_go_on():
                have_map.add(map_uri)
                await self.get("init", urljoin(media, map_uri))
            fresh = [p for p in parts if last is None or (p[0], p[1]) > last]
            if last is None:
                fresh = fresh[-self.args.start_parts :]
            for msn, index, uri in fresh:
                if not self.may_go_on():
                    break
                if await self.get("part", urljoin(media, uri)) is not None:
                    self.parts += 1
                last = (msn, index)
            target = next_part(parts, segments)
            if ended or target is None or not self.may_go_on():
                return
            body = await self.get("blocking_playlist", f"{media}?_HLS_msn={target[0]}&_HLS_part={target[1]}")
            if body is None:
                # A player backs off and retries; so does this one, a little later.
                await asyncio.sleep(0.5)
                if not self.may_go_on():
                    return
                body = await self.get("playlist", media)
                if body is None:
                    return


async def viewer(stats, args, url, delay, deadline):
    await asyncio.sleep(delay)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    # One connection per viewer, like a player in its own browser.
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as session:
        v = Viewer(stats, session, args, deadline)
        await v.run(url)
        stats.parts_per_client.append(v.parts)


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--ramp", type=float, default=2)
    p.add_argument("--start-parts", type=int, default=3)
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--max-requests", type=int, default=5000)
    args = p.parse_args()
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    tasks = [
        asyncio.create_task(viewer(stats, args, args.url, i * args.ramp / max(args.clients, 1), deadline))
        for i in range(args.clients)
    ]
    # Every request is bounded by --timeout, so this only guards against a bug.
    done, pending = await asyncio.wait(tasks, timeout=args.seconds + args.timeout + 10)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            stats.errors[f"crash:{type(task.exception()).__name__}"] += 1
            print(f"llhls_load: client crashed: {task.exception()!r}", file=sys.stderr)
    if pending:
        stats.errors["unfinished"] += len(pending)
    blocking = sorted(stats.blocking_ms)
    per_client = sorted(stats.parts_per_client)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": round(time.monotonic() - started, 1),
                "requests": sum(stats.requests.values()),
                "requests_by_kind": dict(stats.requests),
                "errors": dict(stats.errors),
                "distinct": {k: len(v) for k, v in stats.distinct.items()},
                "cache_status": dict(stats.cache_status),
                "bytes": stats.bytes,
                "blocking_ms": {
                    "p50": round(blocking[len(blocking) // 2]) if blocking else None,
                    "p95": round(blocking[len(blocking) * 95 // 100]) if blocking else None,
                    "max": round(blocking[-1]) if blocking else None,
                },
                "parts_per_client": {
                    "min": per_client[0] if per_client else 0,
                    "median": statistics.median(per_client) if per_client else 0,
                },
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
