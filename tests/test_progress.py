"""Progress: plain lines when not on a terminal, a rich bar when on one."""

from __future__ import annotations

import io
import os
import pty

import pytest

from publisher.progress import progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_few_seconds_and_at_the_end():
    out, clock = io.StringIO(), FakeClock()
    with progress("import", total=1000, stream=out, clock=clock, every=5) as bar:
        for step in range(1000):
            if step in (300, 700):
                clock.now += 5
            bar.advance()
        clock.now += 1.5
    assert out.getvalue().splitlines() == [
        "import: 301/1,000 (30%)",
        "import: 701/1,000 (70%)",
        "import: done: 1,000/1,000 (100%) in 11.5s",
    ]


def test_plain_lines_without_a_total_and_on_failure():
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(RuntimeError), progress("send", stream=out, clock=clock) as bar:
        bar.advance(40)
        raise RuntimeError("connection lost")
    assert out.getvalue().splitlines() == ["send: stopped at 40 in 0.0s"]


def test_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    main, child = pty.openpty()
    with open(child, "w", closefd=True) as terminal, \
            progress("rebuild", total=3, stream=terminal) as bar:
        for _ in range(3):
            bar.advance()
    shown = b""
    while True:  # everything written, until the closed terminal reports EIO
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    shown = shown.decode(errors="replace")
    assert "rebuild" in shown and "3/3" in shown and "━" in shown  # the bar itself

