"""A headless-chromium harness for tests: load a page, report what went wrong, count drawn plots.

`load_page(path, screenshot=...)` starts Debian's chromium headless with a throwaway profile and
`--remote-debugging-port=0`, reads the port it picked from `DevToolsActivePort` in the profile,
and drives it over the Chrome DevTools Protocol through a minimal stdlib websocket client
(RFC 6455: client-masked text frames; no third-party package needed). It

- enables the Runtime, Log, Page and Network domains on a fresh tab, then navigates to file://;
- records console errors/asserts (`Runtime.consoleAPICalled`), uncaught exceptions
  (`Runtime.exceptionThrown`), browser log errors (`Log.entryAdded`: CSP violations, failed
  loads...), JavaScript dialogs (`Page.javascriptDialogOpening`, dismissed at once: an `alert()`
  injected through run data shows up here), and every network request that is not file:, data:,
  blob: or about: (`Network.requestWillBeSent`);
- waits for the load event, then until every `.js-plotly-plot` has drawn its SVG (bounded);
- evaluates JavaScript to describe each plot (id, `.main-svg`, traces drawn, traces in the data);
- optionally captures a full-page PNG screenshot.

Every wait is bounded, and chromium (a process group of its own) is always terminated, then killed
if it lingers, and its profile directory removed. `chromium_path()` is None when chromium is not
installed; tests skip then.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
SKIP_REASON = f"chromium not found at {CHROMIUM}: apt-get install chromium"


def chromium_path() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else None


class BrowserError(RuntimeError):
    """The browser could not be started or driven (not a problem of the page)."""


# --------------------------------------------------------------------------------------------
# A minimal websocket client (RFC 6455), enough for the DevTools protocol
# --------------------------------------------------------------------------------------------

class WebSocket:
    def __init__(self, url: str, timeout: float = 10.0):
        parts = urlparse(url)
        if parts.scheme != "ws":
            raise BrowserError(f"only ws:// is supported, not {url}")
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self.buffer = b""
        self.fragments: list[bytes] = []
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\n"
                   f"Host: {parts.hostname}:{parts.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise BrowserError(f"websocket handshake failed: {status.decode(errors='replace')}")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise BrowserError("the browser closed the DevTools connection")
        self.buffer += chunk

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        # XOR with the repeated mask, as one big integer operation (fast for any size).
        repeated = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def _frame(self) -> tuple[int, int, bytes] | None:
        """(fin, opcode, payload) of the first whole frame in the buffer, consuming it; or None.

        Nothing is consumed until a whole frame has arrived, so a timeout never splits a frame.
        """
        buf = self.buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        n, at = second & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        mask = None
        if second & 0x80:  # servers do not mask, but be lenient
            if len(buf) < at + 4:
                return None
            mask, at = buf[at:at + 4], at + 4
        if len(buf) < at + n:
            return None
        payload, self.buffer = buf[at:at + n], buf[at + n:]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return first & 0x80, first & 0x0F, payload

    def recv(self, timeout: float) -> str:
        """The next text message; raises TimeoutError (socket.timeout) after `timeout` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        while True:
            frame = self._frame()
            if frame is None:
                self._fill()
                continue
            fin, opcode, payload = frame
            if opcode == 0x8:
                raise BrowserError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            self.fragments.append(payload)
            if fin:
                message, self.fragments = b"".join(self.fragments), []
                return message.decode("utf-8")

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------------------------
# The DevTools protocol
# --------------------------------------------------------------------------------------------

class DevTools:
    """Commands and events over one browser-level connection (flattened target sessions)."""

    def __init__(self, url: str):
        self.ws = WebSocket(url)
        self.next_id = 0
        self.events: list[dict] = []
        self.on_event: Callable[[dict], None] | None = None

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 10.0) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline, f"no reply to {method} within {timeout:.0f} s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})

    def wait_for(self, method: str, timeout: float) -> dict:
        """The first event `method` (seen already or arriving within `timeout`)."""
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline, f"no {method} within {timeout:.0f} s")
            if event.get("method") == method:
                return event

    def pump(self, seconds: float) -> None:
        """Collect events for `seconds`."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._next(deadline, "")
        except TimeoutError:
            pass

    def _next(self, deadline: float, why: str) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(why)
        try:
            message = json.loads(self.ws.recv(left))
        except socket.timeout as exc:
            raise TimeoutError(why) from exc
        if "method" in message:
            self.events.append(message)
            if self.on_event:
                self.on_event(message)
        return message

    def close(self) -> None:
        self.ws.close()


# --------------------------------------------------------------------------------------------
# Loading a page
# --------------------------------------------------------------------------------------------

@dataclass
class PageResult:
    url: str
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)     # requests to anything but file:/data:
    console: list[str] = field(default_factory=list)     # every console message, for debugging
    plots: list[dict] = field(default_factory=list)       # one per .js-plotly-plot element
    title: str = ""
    screenshot: Path | None = None
    evaluated: Any = None                                 # the value of `evaluate`, if given

    @property
    def problems(self) -> list[str]:
        """Everything that went wrong on the page, one line each (empty for a clean load)."""
        return ([f"console error: {m}" for m in self.console_errors]
                + [f"uncaught exception: {m}" for m in self.exceptions]
                + [f"browser log error: {m}" for m in self.log_errors]
                + [f"javascript dialog: {m}" for m in self.dialogs]
                + [f"network request: {m}" for m in self.network])


_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")

_DESCRIBE_PLOTS = """
(() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  id: gd.id,
  mainSvg: gd.querySelectorAll('.main-svg').length,
  drawnTraces: gd.querySelectorAll('.scatterlayer .trace').length,
  dataTraces: (gd.data || []).length,
  width: Math.round(gd.getBoundingClientRect().width),
  height: Math.round(gd.getBoundingClientRect().height),
})))()
"""

_ALL_DRAWN = """
(() => document.readyState === 'complete' &&
  Array.from(document.querySelectorAll('.js-plotly-plot')).every(
    gd => gd._fullLayout && gd.querySelector('.main-svg')))()
"""


def load_page(path: str | os.PathLike, *, screenshot: str | os.PathLike | None = None,
              evaluate: str | None = None, width: int = 1280, height: int = 900,
              timeout: float = 20.0, draw_timeout: float = 10.0) -> PageResult:
    """Load a local HTML file in headless chromium and report on it (see the module doc).

    `evaluate` is an extra JavaScript expression run after the plots are drawn; its JSON value
    lands in `PageResult.evaluated`. `timeout` bounds the whole visit (start, load, screenshot);
    `draw_timeout` how long to wait for the plots to draw after the load event. Raises
    BrowserError if chromium cannot be driven at all or the page does not load in time.
    """
    binary = chromium_path()
    if binary is None:
        raise BrowserError(SKIP_REASON)
    url = Path(path).resolve().as_uri()
    result = PageResult(url=url)
    profile = tempfile.mkdtemp(prefix="landscape-chromium-")
    log = open(os.path.join(profile, "chromium.log"), "wb")
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--hide-scrollbars", f"--window-size={width},{height}",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )
    devtools = None
    try:
        deadline = time.monotonic() + timeout
        ws_url = _devtools_url(profile, process, deadline)
        devtools = DevTools(ws_url)

        def on_event(event: dict) -> None:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(_remote_text(a) for a in params.get("args", []))
                result.console.append(f"{params.get('type')}: {text}")
                if params.get("type") in ("error", "assert"):
                    result.console_errors.append(text)
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                exc = details.get("exception", {})
                result.exceptions.append(exc.get("description") or details.get("text", "?"))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                result.console.append(f"log {entry.get('level')}: {entry.get('text')}")
                if entry.get("level") == "error":
                    result.log_errors.append(f"{entry.get('text')} ({entry.get('url', '')})")
            elif method == "Page.javascriptDialogOpening":
                result.dialogs.append(f"{params.get('type')}: {params.get('message')}")
                devtools.ws.send(json.dumps({"id": 0, "sessionId": event.get("sessionId"),
                                             "method": "Page.handleJavaScriptDialog",
                                             "params": {"accept": False}}))
            elif method == "Network.requestWillBeSent":
                request_url = params.get("request", {}).get("url", "")
                if not request_url.startswith(_LOCAL_SCHEMES):
                    result.network.append(request_url)

        devtools.on_event = on_event
        target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = devtools.send("Target.attachToTarget",
                                {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            devtools.send(f"{domain}.enable", session=session)
        devtools.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1,
                       "mobile": False}, session=session)
        reply = devtools.send("Page.navigate", {"url": url}, session=session)
        if reply.get("errorText"):
            raise BrowserError(f"cannot open {url}: {reply['errorText']}")
        devtools.wait_for("Page.loadEventFired", timeout=max(deadline - time.monotonic(), 0.1))

        def js(expression: str) -> Any:
            reply = devtools.send("Runtime.evaluate",
                                  {"expression": expression, "returnByValue": True,
                                   "awaitPromise": True}, session=session)
            if "exceptionDetails" in reply:
                raise BrowserError(f"evaluating JavaScript failed: {reply['exceptionDetails']}")
            return reply.get("result", {}).get("value")

        drawn_by = min(deadline, time.monotonic() + draw_timeout)
        while not js(_ALL_DRAWN):
            if time.monotonic() > drawn_by:
                break  # describe what there is; the test judges it
            devtools.pump(0.1)
        devtools.pump(0.3)  # late console errors, resize redraws
        result.plots = js(_DESCRIBE_PLOTS) or []
        result.title = js("document.title") or ""
        if evaluate is not None:
            result.evaluated = js(evaluate)
        if screenshot is not None:
            metrics = devtools.send("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            full_height = int(min(size["height"], 16000))
            # Make the viewport as tall as the page, let plotly settle, then capture it whole.
            devtools.send("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": full_height, "deviceScaleFactor": 1,
                           "mobile": False}, session=session)
            devtools.pump(0.3)
            shot = devtools.send("Page.captureScreenshot",
                                 {"format": "png", "captureBeyondViewport": True,
                                  "clip": {"x": 0, "y": 0, "width": width,
                                           "height": full_height, "scale": 1}},
                                 session=session, timeout=max(deadline - time.monotonic(), 5))
            result.screenshot = Path(screenshot)
            result.screenshot.parent.mkdir(parents=True, exist_ok=True)
            result.screenshot.write_bytes(base64.b64decode(shot["data"]))
        try:
            devtools.send("Browser.close", timeout=2)
        except (BrowserError, TimeoutError, OSError):
            pass
        return result
    except TimeoutError as exc:
        raise BrowserError(f"chromium timed out: {exc}; log: {_tail(profile)}") from exc
    finally:
        if devtools is not None:
            devtools.close()
        _stop(process)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(profile: str, process: subprocess.Popen, deadline: float) -> str:
    """The browser websocket URL, from the DevToolsActivePort file chromium writes on start."""
    port_file = Path(profile) / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with code {process.returncode}: {_tail(profile)}")
        try:
            lines = port_file.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= 2 and lines[0].strip().isdigit():
            return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
        time.sleep(0.05)
    raise BrowserError(f"chromium did not open its DevTools port in time: {_tail(profile)}")


def _stop(process: subprocess.Popen) -> None:
    """Terminate chromium's process group (it runs in a session of its own), then kill it."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # Helper processes (renderer, zygote) share the group; make sure none outlives the browser.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remote_text(arg: dict) -> str:
    if "value" in arg:
        return str(arg["value"])
    return arg.get("description") or arg.get("type", "?")


def _tail(profile: str, lines: int = 15) -> str:
    try:
        text = (Path(profile) / "chromium.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:])
