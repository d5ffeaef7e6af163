"""The real ``deskapp`` in a pseudo-terminal, exactly as sshd's ``ForceCommand`` runs it.

The console script runs as its own session on a pty (stdin, stdout and stderr are the pty; nothing
else), with a small environment like sshd's (TERM, LANG, HOME, USER) and no emulators. Its output
goes through ``pyte``, a VT100/xterm emulator, and the tests assert on the screen as an agent
would see it: the Chinese header and the footer keys in their columns (each Chinese character
takes two cells), a query showing rows, Enter opening the card, resizes (SIGWINCH) redrawn at every
size, Ctrl+Z and a SIGTSTP never stopping the process, Ctrl+Q leaving with status 0, and
16-colour terminals (TERM=linux, TERM=xterm) never sent 256-colour or true-colour codes.

Every wait polls the pty with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import getpass
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ptyprocess
import pyte
import pytest
from wcwidth import wcwidth  # pyte's own dependency

from deskapp.services.demo import DEMO_PIN

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals and /proc: Linux")

DESKAPP = Path(sys.executable).parent / "deskapp"
#: Generous: two cores shared with the rest of the suite. A healthy run takes a fraction of it.
DEADLINE_S = 20.0
STUB = "\x00"  # the right half of a double-width character in cells()
#: "^p 命令" (7 cells) ends one cell before the right edge (the footer's padding).
PALETTE_KEY_FROM_RIGHT = 8


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME, XDG directories, the log file and the demo database: all under a temporary directory."""
    root = tmp_path_factory.mktemp("pty")
    for sub in ("home", "data", "config", "state", "cache"):
        (root / sub).mkdir()
    env = environment(root, "xterm-256color")
    result = subprocess.run(
        [str(DESKAPP), "demo", "--db", str(root / "demo.db"), "--orders", "300", "--no-ui", "--seed", "7"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return root


def environment(root: Path, term: str) -> dict[str, str]:
    """What sshd gives a forced command (plus where our files go): nothing from the test's shell."""
    login = getpass.getuser()
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "TERM": term, "LANG": "C.UTF-8", "USER": login,
        "LOGNAME": login, "HOME": str(root / "home"), "SHELL": "/bin/sh",
        "XDG_DATA_HOME": str(root / "data"), "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_STATE_HOME": str(root / "state"), "XDG_CACHE_HOME": str(root / "cache"),
        "DESKAPP_LOG_FILE": str(root / "deskapp.log"), "DESKAPP_TOKEN_FILE": str(root / "tokens.json"),
    }


class Terminal:
    """``deskapp`` on a pty, its output fed to a pyte screen of the same size."""

    def __init__(self, root: Path, cols: int, rows: int, term: str = "xterm-256color") -> None:
        argv = [str(DESKAPP), "--db", str(root / "demo.db")]
        # Run from the temporary directory: no deskapp.toml or rules file of the checkout is found.
        self.proc = ptyprocess.PtyProcess.spawn(argv, cwd=str(root), env=environment(root, term),
                                                dimensions=(rows, cols))
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.closed = False

    @property
    def cols(self) -> int:
        return self.screen.columns

    @property
    def rows(self) -> int:
        return self.screen.lines

    def pump(self, timeout: float) -> None:
        """Feed whatever the app writes within ``timeout`` seconds to the screen."""
        if self.closed:
            return
        ready, _, _ = select.select([self.proc.fd], [], [], timeout)
        while ready:
            try:
                data = os.read(self.proc.fd, 65536)
            except OSError:  # EIO: the app closed the terminal (it exited)
                data = b""
            if not data:
                self.closed = True
                return
            self.raw.extend(data)
            self.stream.feed(data)
            ready, _, _ = select.select([self.proc.fd], [], [], 0)

    def wait_for(self, condition: Callable[[], bool], what: str, deadline: float = DEADLINE_S) -> None:
        """Poll the pty until ``condition()`` holds; fail with the screen as it is after ``deadline``."""
        end = time.monotonic() + deadline
        while not condition():
            if time.monotonic() > end or self.closed:
                pytest.fail(f"{what}: not seen within {deadline:.0f} s (alive: {self.proc.isalive()})\n"
                            + self.text(), pytrace=False)
            self.pump(0.05)

    def wait_for_text(self, text: str, deadline: float = DEADLINE_S) -> None:
        self.wait_for(lambda: text in self.text(), repr(text), deadline)

    def line(self, row: int) -> str:
        """One screen row as text (pyte's own ``display`` trips over a half-overwritten wide character)."""
        return self.cells(row).replace(STUB, "").rstrip()

    def text(self) -> str:
        return "\n".join(self.line(row) for row in range(self.rows))

    def cells(self, row: int) -> str:
        """One screen row with an index per column: the right half of a wide character is STUB."""
        line = self.screen.buffer[row]
        return "".join(line[x].data or STUB for x in range(self.cols))

    def column(self, row: int, text: str) -> int:
        """The column ``text`` starts in on ``row`` (-1 when absent); wide characters count twice."""
        needle = "".join(ch + STUB * (wcwidth(ch) == 2) for ch in text)
        return self.cells(row).find(needle)

    def press(self, keys: bytes) -> None:
        self.proc.write(keys)

    def resize(self, cols: int, rows: int) -> None:
        """What a terminal window does: the pty's size changes and the app gets SIGWINCH."""
        self.screen.resize(rows, cols)
        self.proc.setwinsize(rows, cols)

    def state(self) -> str:
        """The process state from /proc (``T``: stopped)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0]

    def quit(self) -> int:
        """Ctrl+Q; the exit status once the process has gone."""
        self.press(b"\x11")
        end = time.monotonic() + DEADLINE_S
        while self.proc.isalive() and time.monotonic() < end:
            self.pump(0.05)
        assert not self.proc.isalive(), "Ctrl+Q did not end the app\n" + self.text()
        return self.proc.exitstatus

    def close(self) -> None:
        if self.proc.isalive():
            self.proc.terminate(force=True)


@pytest.fixture
def terminal(home: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(cols: int = 80, rows: int = 24, term: str = "xterm-256color") -> Terminal:
        opened.append(Terminal(home, cols, rows, term))
        sign_in(opened[-1])
        return opened[-1]

    yield open_terminal
    for t in opened:
        t.close()


def sign_in(t: Terminal) -> None:
    """The demo made this login its admin with the demo PIN: an operator with a PIN starts on the
    sign-in screen, its name already chosen (deskapp.services.session)."""
    t.wait_for_text("的 PIN：")
    t.press(DEMO_PIN.encode() + b"\r")


def framed(t: Terminal) -> bool:
    """A screen drawn at the terminal's size: the header's clock ends in the last column, the
    footer is on the last row with the palette key at its right end."""
    return (re.search(r"\d\d:\d\d$", t.cells(0)) is not None
            and t.column(t.rows - 1, "^p 命令") == t.cols - PALETTE_KEY_FROM_RIGHT)


def lookup_ready(t: Terminal) -> bool:
    return framed(t) and t.column(0, "订单台") > 0 and t.column(t.rows - 1, "清空") > 0


def card_ready(t: Terminal, order_no: str) -> bool:
    return framed(t) and order_no in t.line(1) and t.column(t.rows - 1, "返回") > 0


def result_rows(t: Terminal) -> list[str]:
    """The lookup's result rows: the lines under the column header that start with an order number."""
    lines = t.text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("订单号"))
    return [line for line in lines[start + 1:-1] if re.match(r"[A-Z]*\d[\w-]{5,}", line)]


def search(t: Terminal, query: str) -> list[str]:
    t.press(query.encode())
    t.wait_for(lambda: "找到" in t.text() and len(result_rows(t)) >= 3, f"rows for {query!r}")
    return result_rows(t)


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (200, 60)])
def test_lookup_header_footer_query_and_card(terminal: Callable[..., Terminal], cols: int, rows: int) -> None:
    t = terminal(cols, rows)
    t.wait_for(lambda: lookup_ready(t), "the lookup screen")
    # Header: the product name after "deskapp", each character two cells wide.
    assert t.column(0, "deskapp") == 1 and t.column(0, "订单台") == 10
    assert t.cells(0)[10:16] == f"订{STUB}单{STUB}台{STUB}"
    # The search box's placeholder on row 2, inside its border.
    assert t.column(2, "订单号 / 手机号或后4位") == 3
    # Footer keys in order from the left edge, the palette key right-aligned.
    footer = t.rows - 1
    keys = [t.column(footer, key) for key in ("打开", "esc 清空", "f3 搜索", "^q 退出", "f2 English")]
    assert keys[0] == 3 and keys == sorted(keys), t.cells(footer)

    rows_found = search(t, "王")
    first_no = rows_found[0].split()[0]
    assert all("王" in row for row in rows_found)  # the receiver column

    t.press(b"\r")
    t.wait_for(lambda: card_ready(t, first_no), "the order card")
    assert "时间线" in t.text()
    assert t.quit() == 0


def test_resizes_and_ctrl_z_never_stop_the_app(terminal: Callable[..., Terminal]) -> None:
    t = terminal(80, 24)
    t.wait_for(lambda: lookup_ready(t), "the lookup screen")
    first_no = search(t, "王")[0].split()[0]
    t.press(b"\r")
    t.wait_for(lambda: card_ready(t, first_no), "the order card")

    for cols, rows in [(200, 60), (40, 12), (80, 24)]:
        t.resize(cols, rows)
        t.wait_for(lambda: card_ready(t, first_no), f"the card redrawn at {cols}×{rows}")
        assert t.proc.isalive()

    # Ctrl+Z: a key like any other here (no suspend, no shell); the app still answers.
    t.press(b"\x1a")
    t.press(b"\x1b")  # Esc: back to the lookup, which shows the query's rows again
    t.wait_for(lambda: lookup_ready(t) and "找到" in t.text(), "the lookup after Ctrl+Z, Esc")
    assert t.state() != "T"
    # A SIGTSTP from outside (not the keyboard) is ignored too, where Textual's own handler
    # would stop the process and freeze a forced-command session.
    os.kill(t.proc.pid, signal.SIGTSTP)
    t.press(b"\r")
    t.wait_for(lambda: card_ready(t, first_no), "the card after SIGTSTP")
    assert t.state() != "T"
    assert t.quit() == 0


SGR = re.compile(rb"\x1b\[([0-9;:]*)m")


@pytest.mark.parametrize("term", ["linux", "xterm"])
def test_sixteen_colour_terminals(terminal: Callable[..., Terminal], term: str) -> None:
    t = terminal(80, 24, term)
    t.wait_for(lambda: lookup_ready(t), "the lookup screen")
    assert len(search(t, "王")) >= 3
    codes = [m.group(1) for m in SGR.finditer(bytes(t.raw))]
    assert codes, "no colour at all"
    deep = [c for c in codes if re.search(rb"(^|;)[34]8[;:][25]", c)]
    assert deep == [], f"256-colour or true-colour codes sent to TERM={term}: {deep[:3]}"
    assert t.quit() == 0


def test_without_a_terminal_one_line_and_exit_2(home: Path) -> None:
    """`ssh host` with no pty (-T, or a command): no escape codes into a pipe, no waiting forever."""
    result = subprocess.run([str(DESKAPP), "--db", str(home / "demo.db")], cwd=home, env=environment(home, "xterm"),
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().strip() == "deskapp: 需要在终端里运行（用 ssh -t 连接）"
