"""A TCP forwarder on a loopback port in front of a real server, which a test can cut (every open
connection closed, new ones refused) and restore on the same port: a Redis outage on demand."""
from __future__ import annotations

import socket
import threading

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # accepted and forwarded, for the report
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # port 0 the first time; the same port after a cut
        listener.listen(128)
        listener.settimeout(0.2)  # so the accepting thread sees a cut promptly
        self.port = listener.getsockname()[1]
        self._listener, self._stop = listener, threading.Event()
        self._accepting = threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True,
                                           name=f"proxy-{self.port}")
        self._accepting.start()
        return self

    def cut(self) -> None:
        """Refuse new connections (nothing listens on the port) and close every open one."""
        if self._listener is None:
            return
        self._stop.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        self._listener = None
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            _close(sock)

    restore = start

    def stop(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if stop.is_set():  # cut while this one was being connected
                    _close(client), _close(upstream)
                    return
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
