"""A zero-latency OpenAI-compatible upstream on 127.0.0.1, for measuring load clients.

A bare asyncio protocol (HTTP/1.1 keep-alive, uvloop) so that the server costs as little CPU
as possible: a non-streaming answer is one canned response; a streaming answer is
``--chunks`` SSE events written with ``--gap-ms`` between them, then usage and [DONE].

    python benchmarks/zero_upstream.py --port 8300 [--chunks 20 --gap-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop

MODEL = "zero"


def _event(obj: object) -> bytes:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


class Upstream(asyncio.Protocol):
    def __init__(self, chunks: int, gap_s: float) -> None:
        self.chunks = chunks
        self.gap_s = gap_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4:end], self.buffer[end:]
            self.respond(head.split(" ", 2)[1], body)

    def respond(self, path: str, body: bytes) -> None:
        assert self.transport is not None
        if path.endswith("/models"):
            payload = json.dumps({"object": "list", "data": [{"id": MODEL}]}).encode()
            self._send(payload)
            return
        stream = b'"stream":true' in body or b'"stream": true' in body
        if not stream:
            self._send(_COMPLETE)
            return
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
        asyncio.get_running_loop().create_task(self._stream())

    def _send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
                             + payload)

    async def _stream(self) -> None:
        assert self.transport is not None
        for _ in range(self.chunks):
            if self.gap_s:
                await asyncio.sleep(self.gap_s)
            if self.transport.is_closing():
                return
            self._chunk(_TOKEN)
        self._chunk(_USAGE % self.chunks + b"data: [DONE]\n\n")
        self.transport.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


_COMPLETE = json.dumps({
    "id": "cmpl-0", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}).encode()
_TOKEN = _event({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                 "choices": [{"index": 0, "delta": {"content": " ok"}, "finish_reason": None}]})
_USAGE = (b'data: {"id":"c","object":"chat.completion.chunk","model":"zero","choices":[],'
          b'"usage":{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":0}}\n\n')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    args = parser.parse_args()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Upstream(args.chunks, args.gap_ms / 1e3),
                                          "127.0.0.1", args.port, backlog=4096)
        print(f"listening on http://127.0.0.1:{args.port}/v1", flush=True)
        await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
