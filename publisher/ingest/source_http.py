"""Ingest stage, upstream feeds: the HTTP client one source fetch uses, and its limits.

A stranger's server decides how fast it answers and where it redirects, so a fetch holds
it to three rules that httpx alone does not give:

- **A deadline, not only a timeout.** `[[sources]] timeout` bounds the whole fetch
  (connect, TLS, redirects, headers, body): every socket operation waits at most what is
  left of it, so a server sending one byte every few seconds is cut off on time.
- **Redirects stay on the source's own host** (same host and port; http to https on the
  default port is fine), unless the source says `follow_redirects = "any"`; and only to
  http or https either way.
- **No private or loopback addresses** (RFC 1918, link-local and cloud metadata, CGNAT,
  ::1, fc00::/7, ...) unless the source's own host is one: a public feed cannot redirect
  or re-resolve us into the internal network. The check is made on the address we then
  connect to, so a DNS answer that changes between check and use changes nothing.

These live in an httpcore network backend (its hook for opening connections) rather
than around httpx's calls, because only there is every read and every address seen.
Name lookups count against the deadline too: getaddrinfo cannot be interrupted, so it
runs in a thread of its own that the fetch stops waiting for.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import typing

import httpcore
import httpx

if typing.TYPE_CHECKING:
    from publisher.config import SourceSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """The source could not be fetched; the message says why, for logs and status."""


class DeadlinePassed(httpcore.ReadTimeout):
    """The whole fetch ran out of time (httpx reports it as a timeout)."""


class Deadline:
    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def clip(self, timeout: float | None) -> float:
        """What a socket operation may wait: its own timeout, or less if the fetch's
        time runs out sooner; raises once it has run out."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlinePassed("the fetch's deadline passed")
        return left if timeout is None else min(timeout, left)


def refused_address(address: IPAddress, own_private: bool) -> bool:
    """Whether a fetch may not connect to `address`: anything not globally routable,
    unless the source's own host is such an address itself."""
    if own_private:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global


def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """The host's addresses, waiting at most `timeout` seconds for the resolver."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass  # a name: ask the resolver
    answer: dict[str, typing.Any] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            answer["error"] = exc

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise DeadlinePassed(f"no answer from the resolver for {host}")
    if "error" in answer:
        raise httpcore.ConnectError(f"cannot resolve {host}: {answer['error']}")
    infos = answer["infos"]
    found: list[IPAddress] = []
    for *_rest, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to allowed addresses and bounding every
    operation by the fetch's deadline."""

    def __init__(self, deadline: Deadline, own_host: str):
        self.inner = httpcore.SyncBackend()
        self.deadline, self.own_host = deadline, own_host
        self.own_private: bool | None = None

    def is_own_private(self) -> bool:
        if self.own_private is None:
            addresses = resolve(self.own_host, 80, self.deadline.clip(None))
            self.own_private = bool(addresses) and all(
                refused_address(a, own_private=False) for a in addresses)
        return self.own_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable | None = None) -> httpcore.NetworkStream:
        addresses = resolve(host, port, self.deadline.clip(timeout))
        allowed = [a for a in addresses if not refused_address(a, self.is_own_private())]
        if not allowed:
            raise FetchError(f"refused to connect to {host}: it is {addresses[0]}, a "
                             "private or loopback address (the source's own host is not)")
        stream = self.inner.connect_tcp(str(allowed[0]), port, self.deadline.clip(timeout),
                                        local_address, socket_options)
        return DeadlineStream(stream, self.deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable | None = None):
        raise FetchError("sources are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline):
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.deadline.clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.deadline.clip(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self.stream.start_tls(ssl_context, server_hostname,
                                                    self.deadline.clip(timeout)),
                              self.deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self.stream.get_extra_info(info)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over the guarded backend (no proxy: we connect ourselves)."""

    def __init__(self, backend: GuardedBackend):
        super().__init__()
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=backend)


def effective_port(url: httpx.URL) -> int | None:
    return url.port or DEFAULT_PORTS.get(url.scheme)


def same_host(origin: httpx.URL, target: httpx.URL) -> bool:
    if target.host != origin.host:
        return False
    if effective_port(target) == effective_port(origin):
        return True
    return origin.scheme == "http" and target.scheme == "https" and target.port is None


def redirect_check(source: SourceSettings) -> typing.Callable[[httpx.Response], None]:
    """A response hook refusing a redirect the source's settings do not allow."""
    origin = httpx.URL(source.url)

    def check(response: httpx.Response) -> None:
        if not response.has_redirect_location:
            return
        location = response.headers["location"]
        target = response.request.url.join(location)
        if target.scheme not in DEFAULT_PORTS:
            raise FetchError(f"refused a redirect to {location}: only http and https "
                             "are followed")
        if source.follow_redirects != "any" and not same_host(origin, target):
            raise FetchError(f"refused a redirect to {location}: not on the source's own "
                             'host (follow_redirects = "any" allows it)')

    return check


def source_client(source: SourceSettings) -> httpx.Client:
    """A client for one fetch of `source`, its deadline starting now."""
    backend = GuardedBackend(Deadline(source.timeout), httpx.URL(source.url).host)
    return httpx.Client(timeout=source.timeout, follow_redirects=True,
                        transport=GuardedTransport(backend),
                        event_hooks={"response": [redirect_check(source)]})
