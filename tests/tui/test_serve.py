"""``malaria-tui serve`` in a real headless Chromium.

The server runs in its own process group on a free 127.0.0.1 port; Chromium is driven over
the DevTools protocol (aiohttp, a textual-serve dependency) so the test waits in real time for
the app's process to start and its screen to arrive over the websocket, reads the bytes the
page received (the app's own text) and takes a PNG screenshot that must not be blank.
Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped without it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from malaria_tui.tui import serve as serve_mod
from tests.conftest import MALARIA_TUI

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing (Debian: apt-get install -y chromium)",
)

# Keeps a copy of every websocket message the page receives (the app's terminal output).
HOOK = r"""
(() => {
  window.__appText = "";
  window.__appMessages = 0;
  const Orig = window.WebSocket;
  const keep = (buf) => {
    window.__appMessages += 1;
    if (window.__appText.length < 4000000) window.__appText += new TextDecoder().decode(buf);
  };
  function Hooked(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    ws.addEventListener("message", (e) => {
      if (e.data instanceof ArrayBuffer) keep(e.data);
      else if (e.data instanceof Blob) e.data.arrayBuffer().then(keep);
      else { window.__appMessages += 1; window.__appText += e.data; }
    });
    return ws;
  }
  Hooked.prototype = Orig.prototype;
  Object.assign(Hooked, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Hooked;
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def kill_group(proc: subprocess.Popen) -> None:
    """End a process we started in its own session, and its children (the served apps)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


# --- the pure parts ---------------------------------------------------------------------------


def test_app_command_and_loopback(tmp_path):
    cmd = serve_mod.app_command(tmp_path / "my runs", tmp_path / "c.toml")
    assert cmd.startswith(sys.executable) or cmd.startswith("'")
    assert "-m malaria_tui --runs-dir" in cmd and "'" in cmd  # spaces quoted for the shell
    assert str((tmp_path / "c.toml").resolve()) in cmd
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert serve_mod.is_loopback(host), host
    for host in ("0.0.0.0", "192.168.1.4", "example.org", "::"):
        assert not serve_mod.is_loopback(host), host


def test_serve_warns_when_not_on_loopback(monkeypatch, capsys):
    started = []

    class Dummy:
        def serve(self):
            started.append(True)

    monkeypatch.setattr(serve_mod, "make_server", lambda *a, **k: Dummy())
    serve_mod.serve(host="127.0.0.1", port=8123)
    assert "warning" not in capsys.readouterr().err
    serve_mod.serve(host="0.0.0.0", port=8123)
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0, not a loopback address" in err
    assert started == [True, True]  # refused nothing


# --- the real browser --------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    port = free_port()
    runs = tmp_path / "runs"
    runs.mkdir()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    # Started as a person types it: the installed command, not the function.
    proc = subprocess.Popen(
        [
            *MALARIA_TUI,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--runs-dir",
            str(runs),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port, 60)
        yield f"http://127.0.0.1:{port}", proc, tmp_path / "server.log"
    finally:
        kill_group(proc)
        log.close()


@pytest.fixture
def chromium(tmp_path):
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        active = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (active.is_file() and active.read_text().strip()):
            assert proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < end, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(active.read_text().split()[0])
        yield port
    finally:
        kill_group(proc)


class CDP:
    """The smallest DevTools-protocol client: call(method, **params) -> result."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        i = next(self.ids)
        await self.ws.send_json({"id": i, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == i:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def eval(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")


def page_ws_url(devtools_port: int) -> str:
    end = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        assert time.monotonic() < end, "no page target in chromium"
        time.sleep(0.2)


@needs_chromium
def test_served_app_renders_in_headless_chromium(server, chromium, tmp_path):
    import aiohttp
    import numpy as np
    from PIL import Image

    url, proc, log_path = server

    async def go():
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(page_ws_url(chromium), max_msg_size=0) as ws,
        ):
            cdp = CDP(ws)
            await cdp.call("Page.enable")
            await cdp.call("Runtime.enable")
            await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
            await cdp.call("Page.navigate", url=url)
            # the textual-serve page, then the app's process, then its screen over the websocket
            loop = asyncio.get_running_loop()
            end = loop.time() + 90
            state = {}
            while loop.time() < end:
                state = await cdp.eval(
                    "({title: document.title, body: document.body ? document.body.className : '',"
                    " terminal: !!document.querySelector('.textual-terminal'),"
                    " n: window.__appMessages || 0,"
                    " text: (window.__appText || '').replace(/\\x1b\\[[0-9;:?]*[a-zA-Z]/g, '')})"
                )
                text = (state or {}).get("text", "")
                if "Dataset" in text and "Predict" in text and "TF " in text:
                    break
                await asyncio.sleep(0.5)
            assert state and state["terminal"], state
            assert "-first-byte" in state["body"], (state["body"], log_path.read_text()[-2000:])
            text = state["text"]
            # the app's own screen: the numbered tabs and the TensorFlow status
            for word in ("Dataset", "Augment", "Predict", "Runs"):
                assert word in text, (word, text[-2000:])
            assert "TF " in text
            await asyncio.sleep(1.0)  # let xterm.js paint the last frame
            shot = await cdp.call("Page.captureScreenshot", format="png")
            return base64.b64decode(shot["data"])

    png = asyncio.run(asyncio.wait_for(go(), 150))
    (tmp_path / "serve.png").write_bytes(png)
    if os.environ.get("MALARIA_TUI_SERVE_PNG"):  # keep the picture to look at
        Path(os.environ["MALARIA_TUI_SERVE_PNG"]).write_bytes(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[0] >= 600 and img.shape[1] >= 1000
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    assert colours > 30, f"the screenshot looks blank ({colours} colours)"
    # the top rows are the app's tab bar, not the page's dark background
    top = img[:40].reshape(-1, 3)
    assert (np.abs(top.astype(int) - [12, 24, 31]).sum(axis=1) > 30).mean() > 0.3
    assert proc.poll() is None  # the server is still up
    log = log_path.read_text(errors="replace")
    assert re.search(r"-m\s+malaria_tui\s+--runs-dir", log), log[-2000:]  # what it serves
