"""Long-running commands (webhook, dashboard, docs) stop the same way on Ctrl-C and SIGTERM."""

import logging
import signal
from typing import Protocol


class _Server(Protocol):
    def serve_forever(self) -> None: ...
    def server_close(self) -> None: ...


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """SIGTERM (a service manager's stop) raises KeyboardInterrupt, as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)


def serve_until_stopped(server: _Server, log: logging.Logger) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the listening socket."""
    sigterm_as_interrupt()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
