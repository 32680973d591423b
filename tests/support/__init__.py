"""Helpers shared by the tests; fixtures stay in tests/conftest.py.

Tests import helpers from here, never from conftest or from another test module:

- this module: where things are (REPO, SHARED, SEED), PG_URL, and the fixed instant NOW
- `servers`: real servers on 127.0.0.1, each bound to port 0 by the kernel (no race for a
  "free" port): SMTP (aiosmtpd), an HTTP host of upstream feeds, the web app under
  uvicorn, and a port that refuses connections
- `mail`: stored articles and subscribers for digest tests, a recording SMTP handler
- `feeds`: articles for the feeds tests, feeds read back, upstream RSS for sources
- `web`: the web app's helpers, and `publisher serve` as a real process
- `daemon`: a `publisher daemon` process, and waiting for a condition
- `console`: the operator accounts, a movable clock, logging in to the console
- `inbox`: scraped dumps and files for the inbox; `mailservers`: private Postfix and
  Dovecot for the bounce tests, on ports held for them
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SHARED = REPO.parent / "shared"
SEED = SHARED / "seeds" / "000_40c4cd09925972a5.txt"
PG_URL = os.environ.get("PUBLISHER_TEST_PG_URL", "")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
