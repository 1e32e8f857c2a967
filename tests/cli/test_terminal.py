"""A real terminal (tmux): progress bars on a large pack and extract, the rich tree.

tmux runs the console script on a pseudo-terminal, so hermetic sees a TTY exactly as
a user's shell would show it; ``capture-pane`` reads the screen back. The bar's
one-second delay is set to zero so the test does not depend on the machine's speed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from cli_helpers import COMMAND, write_sources

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
pytest.importorskip("rich", reason="progress bars and trees need hermetic[rich]")

#: Big enough that the archive takes real writing, small enough to stay quick.
BIG_BYTES = 48 * 1024 * 1024


class Terminal:
    """One tmux server of our own (its own socket), with one 120x40 window."""

    def __init__(self, cwd) -> None:
        self.socket = f"hermetic-test-{uuid.uuid4().hex[:8]}"
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", str(cwd),
            "env -u NO_COLOR HERMETIC_PROGRESS_DELAY=0 TERM=xterm-256color bash "
            "--norc --noprofile",
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            [TMUX, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def run(self, command: str, timeout: float = 60) -> tuple[str, int]:
        """Type *command*, wait for it to finish; return the screen and its status."""
        marker = f"done-{uuid.uuid4().hex[:6]}"
        self._tmux("send-keys", "-t", "t", "clear", "Enter")
        self._tmux("send-keys", "-t", "t", f"{command}; echo {marker}-$?", "Enter")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self._tmux("capture-pane", "-p", "-t", "t", "-J")
            found = re.search(rf"^{marker}-(\d+)$", screen, re.MULTILINE)
            if found:
                return screen, int(found.group(1))
            time.sleep(0.2)
        raise AssertionError(f"{command!r} did not finish:\n{screen}")

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], check=False)


@pytest.fixture
def terminal(tmp_path):
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_progress_bars_on_a_large_pack_and_extract(terminal, tmp_path):
    """The bar shows bytes while packing, then a full bar while extracting."""
    write_sources(
        tmp_path, {"bigmod.py": f"BLOB = bytes(range(256)) * ({BIG_BYTES} // 256)\n"}
    )
    hermetic = " ".join(shlex.quote(part) for part in COMMAND)
    screen, status = terminal.run(f"{hermetic} pack -o big.pt --path . bigmod:BLOB")
    assert status == 0, screen
    assert "writing big.pt" in screen
    assert "━" in screen
    assert "50.3 MB" in screen
    assert "wrote big.pt" in screen
    screen, status = terminal.run(f"{hermetic} extract big.pt out")
    assert status == 0, screen
    assert "extracting big.pt" in screen
    assert "100%" in screen
    assert "extracted " in screen
    assert os.path.getsize(tmp_path / "out" / "big" / "BLOB" / "BLOB.pkl") > BIG_BYTES


def test_rich_tree_on_a_terminal(terminal, tiny_archive):
    """On a terminal, tree draws with rich: folders marked and sizes shown."""
    hermetic = " ".join(shlex.quote(part) for part in COMMAND)
    screen, status = terminal.run(f"{hermetic} tree {shlex.quote(str(tiny_archive))}")
    assert status == 0, screen
    assert "├── tinypkg/" in screen
    assert "model.pkl  " in screen
    lines = [line for line in screen.splitlines() if "layers.py" in line]
    assert lines
    assert lines[0].rstrip().endswith(" B")
