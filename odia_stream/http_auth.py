"""Bearer tokens for odia-stream's own HTTP endpoints (the dashboard, the Prometheus metrics).

They bind to 127.0.0.1 by default. Bound to any other address they must carry a token
(:func:`check_exposure` refuses to start without one), and every request must present it:
``Authorization: Bearer <token>`` (:func:`bearer_token`), compared in constant time
(:func:`token_matches`). :func:`serve_metrics` is the Prometheus endpoint with that check.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import SecretStr

__all__ = ["bearer_token", "check_exposure", "is_loopback", "metrics_app", "serve_metrics", "token_matches"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "10.1.2.3", "dash.example")]
    [True, True, True, False, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: SecretStr | None, what: str, setting: str) -> None:
    """Raise ``ValueError`` when ``what`` would listen on ``host`` beyond this machine without a
    token (``setting``: the environment name that sets it), or with an empty one."""
    if token is not None and not token.get_secret_value():
        raise ValueError(f"{setting} is empty: give {what} a real token, or leave it unset on 127.0.0.1")
    if token is None and not is_loopback(host):
        raise ValueError(f"{what} would listen on {host}, beyond this machine, without a token: set {setting} "
                         "(every request must then send 'Authorization: Bearer <token>'), or bind 127.0.0.1")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, ``None`` for anything else.

    >>> bearer_token("Bearer abc"), bearer_token("bearer  abc "), bearer_token("Basic abc"), bearer_token(None)
    ('abc', 'abc', None, None)
    """
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def token_matches(presented: str | None, token: SecretStr | None) -> bool:
    """Whether a request presenting ``presented`` may pass (always, when no token is set);
    constant-time comparison."""
    if token is None:
        return True
    return presented is not None and hmac.compare_digest(presented.encode(), token.get_secret_value().encode())


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def metrics_app(registry: Any, token: SecretStr | None) -> WsgiApp:
    """Prometheus's WSGI app over ``registry``, answering 401 to a request without the token."""
    from prometheus_client import make_wsgi_app

    inner = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not token_matches(bearer_token(environ.get("HTTP_AUTHORIZATION")), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"a bearer token is required\n"]
        return inner(environ, start_response)

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def serve_metrics(registry: Any, host: str, port: int, token: SecretStr | None, setting: str) -> WSGIServer:
    """Serve ``registry`` on ``host:port`` (0: any free port) in a daemon thread, behind the bearer
    check; refuses a non-loopback ``host`` without a token (:func:`check_exposure`). Raises
    ``OSError`` when the address cannot be bound. Stop it with ``server.shutdown()``."""
    check_exposure(host, token, "the metrics endpoint", setting)
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = make_server(host.strip("[]"), port, metrics_app(registry, token), server_class=server_class,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"metrics-{server.server_port}", daemon=True).start()
    return server
