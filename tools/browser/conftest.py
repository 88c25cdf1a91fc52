"""Fixtures for the web client's tests in a real Chromium.

`parleyd` is started on port 0 with a temporary data directory and known
ready by its readiness line (`parleyd ready irc=ADDR http=ADDR`), as
parley-testkit does; it can be stopped and started again on the same ports
and data directory. `IrcClient` is a plain TCP IRC client whose waits are
bounded by a deadline on the socket, never a sleep. Chromium is Debian's
(/usr/bin/chromium), driven by Playwright without its own browser download.
"""

import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PARLEYD = Path(os.environ.get("PARLEYD", TARGET / "debug" / "parleyd"))
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", TARGET / "browser-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_NAME = "admin"
ADMIN_PASSWORD = "Tr0ub4dor-parley-browser-test"
START_TIMEOUT = 20.0
WAIT = 10.0
# Fast enough that a test can say what it likes.
CONFIG = """
[limits]
flood_burst = 1000000
flood_lines_per_second = 1000000.0
"""


class Parleyd:
    """One parleyd process; `restart()` keeps its ports and data dir."""

    def __init__(self, config: str = CONFIG):
        self.dir = Path(tempfile.mkdtemp(prefix="parleyd-browser-"))
        self.config = self.dir / "parleyd.toml"
        self.config.write_text(config)
        self.data = self.dir / "data"
        self.irc = "127.0.0.1:0"
        self.http = "127.0.0.1:0"
        self.proc = None
        self.start()

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_") and k not in ("NOTIFY_SOCKET", "INVOCATION_ID")}
        env["PARLEY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        self.stderr = open(self.dir / "stderr.txt", "ab")
        self.proc = subprocess.Popen(
            [str(PARLEYD), "--config", str(self.config), "--data-dir", str(self.data),
             "--irc-listen", self.irc, "--http-listen", self.http],
            stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL, env=env, text=True,
        )
        lines = queue.Queue()

        def read(stdout=self.proc.stdout):
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise RuntimeError(f"parleyd printed no readiness line within {START_TIMEOUT}s")
            if line is None:
                raise RuntimeError(f"parleyd ended before it was ready: {(self.dir / 'stderr.txt').read_text()[-2000:]}")
            if line.startswith("parleyd ready"):
                fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
                self.irc = fields["irc"].split(",")[0]
                self.http = fields["http"].split(",")[0]
                self.https = fields.get("https", "").split(",")[0] or None
                return

    @property
    def url(self) -> str:
        return f"http://{self.http}/"

    def stop(self, timeout: float = 15.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        self.stderr.close()

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout=timeout)

    def restart(self):
        self.stop()
        self.start()

    def add_account(self, name: str, password: str):
        subprocess.run([str(PARLEYD), "--data-dir", str(self.data), "account", "add", name],
                       input=password + "\n", text=True, check=True, stdout=subprocess.DEVNULL, timeout=30)

    def get(self, path: str, token: str = None) -> bytes:
        req = urllib.request.Request(f"http://{self.http}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.read()

    def put(self, path: str, body: bytes, token: str) -> int:
        req = urllib.request.Request(f"http://{self.http}{path}", data=body, method="PUT")
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class IrcClient:
    """A line-oriented IRC client over plain TCP."""

    def __init__(self, addr: str, nick: str):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.buf = b""
        self.nick = nick
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.expect(lambda l: l.split()[1:2] == ["001"])
        # The registration burst (auto-join of the lobby included) ends
        # before the answer to this.
        self.barrier()

    def send(self, line: str):
        self.sock.sendall(line.encode() + b"\r\n")

    def lines(self, deadline: float):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.rstrip(b"\r").decode("utf-8", "replace")
                if text.startswith("PING "):
                    self.send("PONG " + text[5:])
                    continue
                yield text
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            if not data:
                return
            self.buf += data

    def expect(self, pred, timeout: float = WAIT) -> str:
        seen = []
        for line in self.lines(time.monotonic() + timeout):
            seen.append(line)
            if pred(line):
                return line
        raise AssertionError(f"{self.nick}: no expected line within {timeout}s; saw {seen[-20:]}")

    def barrier(self, token: str = "barrier") -> list:
        """Everything the server sent before the answer to a PING."""
        self.send(f"PING :{token}")
        before = []
        for line in self.lines(time.monotonic() + WAIT):
            if " PONG " in line and line.endswith(token):
                return before
            before.append(line)
        raise AssertionError(f"{self.nick}: no PONG within {WAIT}s")

    def token(self) -> str:
        self.send("EXTJWT *")
        return self.expect(lambda l: " EXTJWT " in l).split()[-1]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture(scope="session")
def browser():
    if not PARLEYD.exists():
        pytest.fail(f"{PARLEYD} is missing: cargo build -p parley-server --bin parleyd")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def server():
    s = Parleyd()
    yield s
    s.close()


@pytest.fixture
def irc_clients(server):
    made = []

    def make(nick: str, srv: Parleyd = None) -> IrcClient:
        c = IrcClient((srv or server).irc, nick)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def new_page(browser, server):
    """Opens a page in its own context (its own cookies and storage), with
    JavaScript errors collected: a test fails if the page threw."""
    contexts = []
    errors = []

    def make(**context_args):
        ctx = browser.new_context(**context_args)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(WAIT * 1000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def join(page, server, nick: str):
    """Opens the client and joins the chat as `nick`; returns when the
    lobby is shown."""
    page.goto(server.url)
    page.fill("#nick", nick)
    page.press("#nick", "Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector(f"#member-list >> text={nick}")


def wait_message(page, text: str):
    page.locator("#messages .msg", has_text=text).first.wait_for()

