"""`make serve`: the function under functions-framework's own gunicorn set-up, plus read timeouts.

Why: gunicorn's threaded worker reads request headers and bodies with blocking sockets, so a
client that sends part of its headers, or fewer body bytes than its Content-Length, holds a
worker thread forever; THREADS such clients stall the server. Here every socket read times out
after READ_TIMEOUT_SECONDS of silence (per read, so slow but live uploads still finish): a stalled
header read closes the connection, a stalled body read gets 408 from the app (inputs.py).
functions-framework builds gunicorn's options itself and reads no GUNICORN_CMD_ARGS, so this
entry point passes the worker class in. The deployed function sits behind Google's front end,
which receives the whole request before the instance sees it (see function/README.md "Slow clients").
"""

from __future__ import annotations

import argparse
import os
import socket

import functions_framework
from functions_framework._http.gunicorn import GunicornApplication
from gunicorn.workers.gthread import ThreadWorker

READ_TIMEOUT_SECONDS = float(os.environ.get("READ_TIMEOUT_SECONDS", "10") or 10)


class _TimedSocket(socket.socket):
    """A client socket whose "blocking" mode is blocking with a timeout (gunicorn switches sockets
    to blocking before every read; this keeps that switch from meaning "wait forever")."""

    __slots__ = ()

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(READ_TIMEOUT_SECONDS)
        else:
            super().setblocking(False)


class TimedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with read timeouts on client sockets."""

    def enqueue_req(self, conn) -> None:
        if type(conn.sock) is socket.socket:
            conn.sock.__class__ = _TimedSocket
        super().enqueue_req(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="predict")
    parser.add_argument("--source", default="main.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    app = functions_framework.create_app(args.target, args.source)
    GunicornApplication(app, args.host, args.port, False, worker_class=f"{__name__}.TimedThreadWorker").run()


if __name__ == "__main__":
    main()
