"""The server's listening socket and uvicorn settings, shared by the single process and every front end.

Why a module of its own: a front end imports only what HTTP needs, not the model's stack (torch,
timm, transformers), so it starts in about a second and holds a fraction of the memory.
"""

from __future__ import annotations

import errno
import socket

from mmscale.errors import ConfigError
from mmscale.serve.config import DRAIN_TIMEOUT_S, http_parser


def bind_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket. ``reuse_port``: several processes bind the same port and the kernel
    spreads incoming connections over those listening (the ``--frontends N`` front ends).

    A port in use (or not allowed, or a host that is not this machine's) is a ``ConfigError``
    naming the port or host, not an ``OSError`` traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise bind_error(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The user-facing error for a failed ``bind((host, port))``."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError("serve.port", f"port {port} on {host} is already in use (another server?): stop "
                                         "it, or pick another port with --port (--port 0 picks a free one)")
    if exc.errno == errno.EACCES:
        return ConfigError("serve.port", f"not allowed to bind port {port} on {host} (ports below 1024 need "
                                         "privileges): pick another port with --port")
    reason = exc.strerror or str(exc)
    return ConfigError("serve.host", f"cannot bind {host}:{port} ({reason}): --host must be an address or "
                                     "name of this machine, e.g. 127.0.0.1 or 0.0.0.0")


def uvicorn_config(app):
    """uvicorn's settings for the app, the same in the single process and in each front end."""
    import uvicorn  # the serve extra: mmscale.cli imports serve.run, and with it this module, without it

    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http=http_parser(),
                          timeout_graceful_shutdown=int(DRAIN_TIMEOUT_S), backlog=4096)
