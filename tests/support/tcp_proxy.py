"""A loopback TCP proxy in front of a real server (PostgreSQL, Redis), to make an outage real
from the client's side without stopping the shared server:

- `refuse()`: the proxy stops listening, so connecting fails with "connection refused", and the
  connections it carried are cut, as when the server is down; `restore()` listens again;
- `reset_next(n)`: the next n connections are accepted and reset at once, then all goes through
  again (an outage that ends by itself, after so many tries: no timer, no sleep);
- `drop_next_reply()`: the next data the server sends is thrown away and the connection reset,
  as when the server acted on a command and failed before its answer arrived.

It listens on a port below the kernel's ephemeral range, so that no client socket of another
process takes the port while it is refusing.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._resets_left = 0
        self.resets = 0  # connections reset by reset_next()
        self._drops_left = 0
        self.dropped = 0  # replies thrown away by drop_next_reply()
        self.carried = 0  # connections passed through to the server

    def __enter__(self) -> TcpProxy:
        for _ in range(100):
            try:
                self._listen(random.randrange(20000, 32000))
                return self
            except OSError:
                continue
        raise RuntimeError("no free port for the proxy")

    def __exit__(self, *exc) -> None:
        self.refuse()

    def _listen(self, port: int) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
        except OSError:
            listener.close()
            raise
        listener.listen(128)
        self.port, self._listener = port, listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:  # refuse() shut it
                return
            with self._lock:
                reset = self._resets_left > 0
                if reset:
                    self._resets_left -= 1
                    self.resets += 1
            if reset:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open |= {client, upstream}
                self.carried += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, source is upstream), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self._take_drop():
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with self._lock:
                    self._open.discard(end)
                _reset(end)

    def refuse(self) -> None:
        """Stop listening and cut every open connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            self._listener.close()
            self._listener = None
        with self._lock:
            carried, self._open = self._open, set()
        for end in carried:
            _reset(end)

    def restore(self) -> None:
        if self._listener is None:
            self._listen(self.port)

    def reset_next(self, connections: int) -> None:
        with self._lock:
            self._resets_left = connections

    def drop_next_reply(self) -> None:
        with self._lock:
            self._drops_left = 1

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops_left <= 0:
                return False
            self._drops_left -= 1
            self.dropped += 1
            return True


def _reset(end: socket.socket) -> None:
    """Close with a reset (RST), as a peer that went away does, not a polite FIN."""
    try:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        end.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
    except OSError:
        pass
    end.close()
