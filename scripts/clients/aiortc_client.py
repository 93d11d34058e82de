#!/usr/bin/env python3
"""Independent WHIP publisher / WHEP player built on aiortc (not our code, not our stack).

  aiortc_client.py publish URL --token T [--seconds N]
      Publishes a synthetic 640x360@30 video (H.264) and a 48 kHz tone (Opus) for N seconds,
      then DELETEs the session. Prints one JSON line: {"published_frames": ..., "resource": ...}.
  aiortc_client.py play URL [--token T] [--seconds N] [--min-frames K]
      Plays a WHEP endpoint, decodes video, and prints {"decoded_frames": ..., "audio_frames": ...,
      "black_frames": ...} when N seconds have passed or K frames were decoded (a frame is black
      when its mean luma is within 2 of 16).

aiortc skips 127.0.0.1 when gathering, so host addresses are pinned to loopback (INTEROP.md).
"""
import argparse
import asyncio
import fractions
import json
import sys
import time

import aioice.ice
import numpy
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import AudioFrame, VideoFrame

aioice.ice.get_host_addresses = lambda *args, **kwargs: ["127.0.0.1"]


class PatternVideo(VideoStreamTrack):
    """A moving gradient, so every frame differs."""

    def __init__(self):
        super().__init__()
        self.count = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        self.count += 1
        image = numpy.zeros((360, 640, 3), numpy.uint8)
        image[:, :, 0] = (numpy.arange(640) + self.count * 4) % 256
        image[:, :, 1] = self.count % 256
        frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneAudio(AudioStreamTrack):
    """A 440 Hz tone in 20 ms frames."""

    def __init__(self):
        super().__init__()
        self.samples = 0

    async def recv(self):
        frame_samples = 960
        if getattr(self, "_start", None) is None:
            self._start = time.time()
        wait = self._start + self.samples / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (numpy.arange(frame_samples) + self.samples) / 48000
        tone = (numpy.sin(2 * numpy.pi * 440 * t) * 8000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.samples += frame_samples
        return frame


async def wait_gathered(pc):
    while pc.iceGatheringState != "complete":
        await asyncio.sleep(0.05)


async def negotiate(pc, url, token):
    await pc.setLocalDescription(await pc.createOffer())
    await wait_gathered(pc)
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp, headers=headers) as response:
            body = await response.text()
            if response.status != 201:
                raise SystemExit(f"POST {url}: {response.status} {body}")
            location = response.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    from urllib.parse import urljoin
    return urljoin(url, location)


async def delete(resource, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with ClientSession() as http:
        async with http.delete(resource, headers=headers) as response:
            return response.status


async def publish(args):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = PatternVideo()
    pc.addTrack(ToneAudio())
    transceiver = pc.addTransceiver(video, direction="sendonly")
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
    transceiver.setCodecPreferences(h264)
    resource = await negotiate(pc, args.url, args.token)
    deadline = time.time() + args.seconds
    while time.time() < deadline and pc.connectionState not in ("failed", "closed"):
        await asyncio.sleep(0.1)
    state = pc.connectionState
    status = await delete(resource, args.token) if args.delete else None
    await pc.close()
    print(json.dumps({"published_frames": video.count, "resource": resource, "state": state, "delete_status": status}))


async def play(args):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    counts = {"decoded_frames": 0, "audio_frames": 0, "black_frames": 0, "width": 0, "height": 0}

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                counts["decoded_frames"] += 1
                counts["width"], counts["height"] = frame.width, frame.height
                luma = frame.to_ndarray(format="yuv420p")[: frame.height]
                if abs(float(luma.mean()) - 16.0) < 2.0:
                    counts["black_frames"] += 1
            else:
                counts["audio_frames"] += 1

    tasks = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    resource = await negotiate(pc, args.url, args.token)
    deadline = time.time() + args.seconds
    while time.time() < deadline and counts["decoded_frames"] < args.min_frames:
        await asyncio.sleep(0.1)
    counts["state"] = pc.connectionState
    counts["resource"] = resource
    counts["delete_status"] = await delete(resource, args.token)
    await pc.close()
    for task in tasks:
        task.cancel()
    print(json.dumps(counts))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("url")
    p.add_argument("--token", required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--no-delete", dest="delete", action="store_false")
    q = sub.add_parser("play")
    q.add_argument("url")
    q.add_argument("--token", default=None)
    q.add_argument("--seconds", type=float, default=20)
    q.add_argument("--min-frames", type=int, default=1 << 30)
    args = parser.parse_args()
    asyncio.run(publish(args) if args.command == "publish" else play(args))


if __name__ == "__main__":
    sys.exit(main())
