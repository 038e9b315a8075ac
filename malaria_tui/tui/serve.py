"""``malaria-tui serve``: the TUI in a web browser, through textual-serve.

Each browser tab that connects gets its own ``python -m malaria_tui --runs-dir RUNS``
process (an xterm.js page talks to it over a websocket). Bound to 127.0.0.1 by default: the
app can train models and read files on this machine, so exposing it is the user's choice
(a warning is printed, nothing is refused).
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def app_command(runs_dir: str | Path = "runs", config_path: str | Path | None = None) -> str:
    """The shell command textual-serve starts for each browser session (absolute paths)."""
    parts = [sys.executable, "-m", "malaria_tui", "--runs-dir", str(Path(runs_dir).resolve())]
    if config_path is not None:
        parts += ["--config", str(Path(config_path).resolve())]
    return shlex.join(parts)


def make_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    runs_dir: str | Path = "runs",
    config_path: str | Path | None = None,
    public_url: str | None = None,
):
    """The textual-serve ``Server`` (not started)."""
    from textual_serve.server import Server

    return Server(
        app_command(runs_dir, config_path),
        host=host,
        port=port,
        title="malaria-tui",
        public_url=public_url,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    runs_dir: str | Path = "runs",
    config_path: str | Path | None = None,
    public_url: str | None = None,
) -> None:
    """Serve the app at ``http://host:port`` until Ctrl+C (or SIGTERM).

    ``public_url`` is the address browsers use when it differs from ``http://host:port``
    (behind a proxy, or when binding 0.0.0.0).
    """
    if config_path is not None and not Path(config_path).is_file():
        from malaria_tui.engine.errors import UserError

        raise UserError(f"{config_path}: no such config file")
    if not is_loopback(host):
        print(
            f"malaria-tui: warning: serving on {host}, not a loopback address: anyone who can "
            f"reach port {port} can train models and read images as this user",
            file=sys.stderr,
            flush=True,
        )
    make_server(host, port, runs_dir, config_path, public_url).serve()
