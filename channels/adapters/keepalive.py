"""Connection reuse for the SendGrid SDK's HTTP client (python_http_client).

The SDK builds a new urllib opener, and so a new TCP (and TLS) connection, for every request:
at 20 ms per answer that is most of the CPU of sending an email. `KeepAliveClient` is the SDK's
own client class with one change, in the hook the SDK keeps for it (`_make_request`): the request
goes over a persistent `http.client` connection owned by the client (the adapter keeps one client
per thread), and a request that was sent whole but got no answer raises `AnswerLost` rather
than urllib's URLError, so the adapter can tell "never left" from "may have arrived". Everything else (URL building, headers, JSON body, `Response`, the `HTTPError`
subclasses raised for 4xx/5xx) is the SDK's.
"""

from __future__ import annotations

import http.client
import io
import json
import select
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from python_http_client.client import Response
from python_http_client.exceptions import handle_error

IDLE_SECONDS = 2.0
"""Reconnect rather than reuse a connection idle this long (servers close idle ones: uvicorn after 5 s)."""


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """The server closed the idle connection (readable with nothing to read, as urllib3 checks): a
    request written to it would be lost without an answer, and counted as an unknown outcome."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class AnswerLost(OSError):
    """The request was written whole and the answer did not come (timeout, reset, closed): the
    provider may have acted on it, so it must not be retried blindly."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause


class _Connection:
    """One persistent connection to one origin; not thread-safe (one per client, one client per thread)."""

    def __init__(self) -> None:
        self._conn: http.client.HTTPConnection | None = None
        self._origin: tuple[str, str] | None = None
        self._last = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _get(self, scheme: str, netloc: str, timeout: float | None) -> http.client.HTTPConnection:
        if self._conn is not None and (self._origin != (scheme, netloc) or time.monotonic() - self._last > IDLE_SECONDS
                                       or _dropped(self._conn)):
            self.close()
        if self._conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            self._conn = cls(netloc, timeout=timeout)
            self._origin = (scheme, netloc)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def open(self, request: urllib.request.Request, timeout: float | None) -> http.client.HTTPResponse:
        """Send `request` as urllib would (same method, URL, headers, body), raising urllib's
        HTTPError for a non-2xx answer and URLError when the request could not be sent."""
        headers = dict(request.header_items())
        if request.data is not None:
            headers.setdefault("Content-type", "application/x-www-form-urlencoded")
        return self.send(request.get_method(), _Target.of(request.full_url), headers, request.data, timeout)

    def send(self, method: str, target: _Target, headers: dict[str, str], data: bytes | None,
             timeout: float | None) -> http.client.HTTPResponse:
        """`open` without a urllib Request (building one, and parsing its URL back, per call is waste)."""
        conn = self._get(target.scheme, target.netloc, timeout)
        try:
            try:
                conn.request(method, target.selector, data, headers)
            except OSError as exc:  # as urllib: a failure to send is a URLError (the request did not leave whole)
                raise urllib.error.URLError(exc) from exc
            try:
                response = conn.getresponse()
                body = response.read()  # read it all now, so the connection is free for the next request
            except (OSError, http.client.HTTPException) as exc:  # sent whole, no (whole) answer
                raise AnswerLost(exc) from exc
        except BaseException:
            self.close()
            raise
        self._last = time.monotonic()
        if response.will_close:
            self.close()
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(target.url, response.status, response.reason, response.msg,
                                         io.BytesIO(body))
        return _Read(response, body)  # type: ignore[return-value]


class _Target:
    """A request URL split once: (scheme, host:port, path?query)."""

    __slots__ = ("url", "scheme", "netloc", "selector")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url, self.scheme, self.netloc = url, parts.scheme, parts.netloc
        self.selector = parts.path + (f"?{parts.query}" if parts.query else "")

    @classmethod
    def of(cls, url: str) -> _Target:
        return cls(url)


class _Read:
    """The answer, its body already read, as Response reads a urllib response."""

    def __init__(self, response: http.client.HTTPResponse, body: bytes) -> None:
        self._response, self._body = response, body

    def getcode(self) -> int:
        return self._response.status

    def read(self) -> bytes:
        return self._body

    def info(self) -> http.client.HTTPMessage:
        return self._response.msg


class KeepAliveClient(python_http_client.Client):
    """python_http_client.Client over one persistent connection, shared by the clients it builds."""

    def __init__(self, *args: Any, connection: _Connection | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connection = connection or _Connection()
        self._target: _Target | None = None

    def _build_client(self, name: str | None = None) -> KeepAliveClient:
        url_path = self._url_path + [name] if name else self._url_path
        return KeepAliveClient(host=self.host, version=self._version, request_headers=self.request_headers,
                               url_path=url_path, append_slash=self.append_slash, timeout=self.timeout,
                               connection=self._connection)

    def __getattr__(self, name: str) -> Any:
        if name not in self.methods:
            return super().__getattr__(name)
        method = name.upper()

        def http_request(request_body: Any = None, query_params: Any = None, request_headers: Any = None,
                         timeout: float | None = None, **_: Any) -> Response:
            """The SDK's http_request, less the urllib opener it builds and never needs here (building
            one reads every proxy variable of the environment: a third of the CPU of a request), and
            less the urllib Request (its URL is split once per built client)."""
            if request_headers:
                self._update_headers(request_headers)
            if request_body is None:
                data = None
            elif self.request_headers.get("Content-Type", "application/json") != "application/json":
                data = request_body.encode("utf-8")
            else:
                self.request_headers.setdefault("Content-Type", "application/json")
                data = json.dumps(request_body).encode("utf-8")
            if query_params:
                target = _Target(self._build_url(query_params))
            else:  # the path of a built client never changes: split its URL once
                if self._target is None:
                    self._target = _Target(self._build_url(None))
                target = self._target
            headers = {k.capitalize(): v for k, v in self.request_headers.items()}  # as urllib.request.Request
            if data is not None:
                headers.setdefault("Content-type", "application/x-www-form-urlencoded")  # as urllib would
            try:
                answer = self._connection.send(method, target, headers, data, timeout or self.timeout)
            except urllib.error.HTTPError as err:
                exc = handle_error(err)
                exc.__cause__ = None
                raise exc from None
            return Response(answer)

        return http_request

    def _make_request(self, opener: Any, request: urllib.request.Request, timeout: float | None = None) -> Any:
        try:
            return self._connection.open(request, timeout or self.timeout)
        except urllib.error.HTTPError as err:
            exc = handle_error(err)
            exc.__cause__ = None
            raise exc

    def close(self) -> None:
        self._connection.close()
