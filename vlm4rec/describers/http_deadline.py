"""A total deadline for one HTTP request made with ``requests``.

``requests``' ``timeout`` bounds each socket operation, not the request: an endpoint that sends
a byte every 1.5 s never times out at ``timeout=60``. :func:`deadline_session` returns a
session whose connections register themselves with the calling thread while they send and
read; :func:`within` arms a timer that, when the deadline passes, shuts the registered socket
down, so the blocked read fails at once (connect, upload, headers or body alike), and says so.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class DeadlineExceeded(Exception):
    """The whole request took longer than its deadline."""


class _Watch:
    """The connection a thread is using, and whether its deadline fired."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.fired = False
        self.lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        with self.lock:
            self.conn = conn
            if self.fired:  # the deadline passed before the connection was used
                _shutdown(conn)

    def fire(self) -> None:
        with self.lock:
            self.fired = True
            if self.conn is not None:
                _shutdown(self.conn)


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _register(conn: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(conn)


class _Registering:
    """Mixed into urllib3's connections: sending and reading register the connection."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _Conn(_Registering, HTTPConnection):
    pass


class _SConn(_Registering, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Conn


class _SPool(HTTPSConnectionPool):
    ConnectionCls = _SConn


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _SPool}


def deadline_session() -> requests.Session:
    """A :class:`requests.Session` whose requests :func:`within` can cut off."""
    s = requests.Session()
    adapter = _Adapter()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Run the block's request (made on a :func:`deadline_session`, in this thread) with a total
    deadline of ``seconds``; past it the socket is shut down and :class:`DeadlineExceeded` raised."""
    watch = _Watch()
    _current.watch = watch
    timer = threading.Timer(seconds, watch.fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as exc:
        if watch.fired:
            raise DeadlineExceeded(f"no complete response within {seconds:g} s") from exc
        raise
    finally:
        timer.cancel()
        _current.watch = None
    if watch.fired:  # finished while the timer fired: the response may be cut, so do not trust it
        raise DeadlineExceeded(f"no complete response within {seconds:g} s")
