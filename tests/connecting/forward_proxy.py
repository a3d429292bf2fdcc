"""A forwarding HTTP proxy on loopback, for the tests and the proxy benchmark.

    python tests/connecting/forward_proxy.py [--log FILE]

It prints its port on the first line of stdout once it accepts connections, and on the
second the port of its SOCKS5 listener (no authentication, CONNECT only). It tunnels
`CONNECT host:port` (what clients do for https:// URLs) and forwards absolute-form requests
(`GET http://host:port/path`, what clients do for http:// URLs), keeping connections alive
on both sides, as a corporate egress proxy does. With `--log`, it appends one line per
request it handles (`CONNECT host:port` or `METHOD URL`, then the `Proxy-Authorization`
header if the client sent one) and flushes it *before* forwarding, so a client that has its
reply can already read that its request went through.

h11 does the HTTP/1.1 framing on both sides; it is pure Python, so the proxy itself costs
CPU: it runs as a process of its own, and in the benchmark every client goes through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import IO
from urllib.parse import urlsplit

import h11

_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authorization",
    b"proxy-connection",
    b"transfer-encoding",
    b"content-length",
    b"te",
    b"upgrade",
}

Headers = list[tuple[bytes, bytes]]


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        connection.receive_data(await reader.read(65536))


class _Upstream:
    """A keep-alive connection to one origin, for absolute-form requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)

    async def exchange(
        self, method: bytes, target: bytes, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes, bool]:
        """Send one request, read its reply whole; whether the connection can be reused."""
        headers = [*headers, (b"content-length", b"%d" % len(body))]
        self.writer.write(
            self.http.send(h11.Request(method=method, target=target, headers=headers))
        )
        self.writer.write(self.http.send(h11.Data(data=body)))
        self.writer.write(self.http.send(h11.EndOfMessage()))
        await self.writer.drain()
        response = await _next_event(self.http, self.reader)
        while isinstance(response, h11.InformationalResponse):
            response = await _next_event(self.http, self.reader)
        assert isinstance(response, h11.Response), response
        content = bytearray()
        while True:
            event = await _next_event(self.http, self.reader)
            if isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise ConnectionError(f"the origin ended its reply with {event!r}")
        reusable = self.http.our_state is h11.DONE and self.http.their_state is h11.DONE
        if reusable:
            self.http.start_next_cycle()
        kept = [(name, value) for name, value in response.headers if name not in _HOP_BY_HOP]
        return response.status_code, kept, bytes(content), reusable

    def close(self) -> None:
        self.writer.close()


class Proxy:
    def __init__(self, log: IO[str] | None) -> None:
        self._log = log

    def _record(self, request: h11.Request) -> None:
        if self._log is None:
            return
        line = f"{request.method.decode()} {request.target.decode()}"
        for name, value in request.headers:
            if name == b"proxy-authorization":
                line += f" proxy-authorization={value.decode()}"
        self._record_line(line)

    def _record_line(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line + "\n")
            self._log.flush()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = h11.Connection(h11.SERVER)
        upstreams: dict[tuple[str, int], _Upstream] = {}
        try:
            while True:
                request = await _next_event(client, reader)
                if not isinstance(request, h11.Request):
                    return
                body = bytearray()
                while True:
                    event = await _next_event(client, reader)
                    if isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                if request.method == b"CONNECT":
                    await self._tunnel(client, request, reader, writer)
                    return
                status, headers, content = await self._forward(upstreams, request, bytes(body))
                headers.append((b"content-length", b"%d" % len(content)))
                writer.write(client.send(h11.Response(status_code=status, headers=headers)))
                writer.write(client.send(h11.Data(data=content)))
                writer.write(client.send(h11.EndOfMessage()))
                await writer.drain()
                if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                    return
                client.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, OSError):
            return
        finally:
            for upstream in upstreams.values():
                upstream.close()
            writer.close()

    async def handle_socks(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """SOCKS5 (RFC 1928): no authentication, CONNECT to an IPv4 address or a name."""
        try:
            version, methods = await reader.readexactly(2)
            await reader.readexactly(methods)
            writer.write(b"\x05\x00")  # version 5, no authentication
            version, command, _, kind = await reader.readexactly(4)
            if kind == 1:
                host = ".".join(str(part) for part in await reader.readexactly(4))
            elif kind == 3:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            else:
                host = ""
            port = int.from_bytes(await reader.readexactly(2), "big")
            if version != 5 or command != 1 or not host:
                writer.write(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
                return
            self._record_line(f"SOCKS5 {host}:{port}")
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
                return
            writer.write(b"\x05\x00\x00\x01" + bytes(6))  # succeeded
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            writer.close()

    async def _forward(
        self, upstreams: dict[tuple[str, int], _Upstream], request: h11.Request, body: bytes
    ) -> tuple[int, Headers, bytes]:
        url = urlsplit(request.target.decode("ascii"))
        if url.scheme != "http" or not url.hostname:
            return 400, [], b"absolute-form http:// requests only"
        self._record(request)
        origin = (url.hostname, url.port or 80)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = [(name, value) for name, value in request.headers if name not in _HOP_BY_HOP]
        upstream = upstreams.pop(origin, None)
        if upstream is None:
            upstream = _Upstream(*await asyncio.open_connection(*origin))
        try:
            status, reply_headers, content, reusable = await upstream.exchange(
                request.method, target.encode("ascii"), headers, body
            )
        except BaseException:
            upstream.close()
            raise
        if reusable:
            upstreams[origin] = upstream
        else:
            upstream.close()
        return status, reply_headers, content

    async def _tunnel(
        self,
        client: h11.Connection,
        request: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._record(request)
        host, _, port = request.target.decode("ascii").rpartition(":")
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                host.strip("[]"), int(port)
            )
        except (OSError, ValueError):
            writer.write(client.send(h11.Response(status_code=502, headers=[])))
            return
        writer.write(client.send(h11.Response(status_code=200, headers=[])))
        leftover, _ = client.trailing_data
        if leftover:
            upstream_writer.write(leftover)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        if writer.can_write_eof():
            writer.write_eof()


async def serve(log: IO[str] | None) -> None:
    proxy = Proxy(log)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, backlog=1024)
    socks = await asyncio.start_server(proxy.handle_socks, "127.0.0.1", 0, backlog=1024)
    for listening in (server, socks):
        print(listening.sockets[0].getsockname()[1], flush=True)
    async with server, socks:
        await asyncio.gather(server.serve_forever(), socks.serve_forever())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="append one line per request handled to this file")
    args = parser.parse_args()
    log = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        import uvloop  # faster, where it is installed: the proxy is not what is measured

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(log))


if __name__ == "__main__":
    sys.exit(main())
