"""Golden ingest output: a folder of tricky inbox files (Markdown with raw HTML, tables,
code, entities, CRLF and a BOM, Arabic; scraped dumps in UTF-8, UTF-16, cp1252 and the
real seed) parses and stores exactly as recorded in tests/golden/ingest/expected.json:
the rendered and sanitized HTML, the paragraph texts, every field and the content hash.

Recorded before the ingest speed work (issue 18), so it proves the faster path gives the
same output. After an intended change to the output, regenerate and review the diff:

    PUBLISHER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_ingest_golden.py -k sqlite
    git diff tests/golden/ingest/

With the variable set the test rewrites the file and then fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from publisher.ingest import inbox as ingest_module
from publisher.ingest import parallel
from publisher.ingest.inbox import ingest
from publisher.ingest.parse import options_of, parse_with
from tests.support import NOW
from tests.support.inbox import GOLDEN, stored_output


def parsed_output(settings) -> dict:
    """Each golden input file's articles as JSON, with their content hashes."""
    out = {}
    inbox = GOLDEN / "inbox"
    for path in sorted(inbox.rglob("*")):
        if path.is_file():
            key = path.relative_to(inbox).as_posix()
            out[key] = [article.to_json() | {"content_hash": article.content_hash}
                        for article in ingest_module.parse_bytes(path.read_bytes(), key,
                                                                    settings)]
    return out


@pytest.mark.parametrize("workers", [False, True], ids=["here", "workers"])
def test_ingest_output_is_unchanged(settings, store, workers, monkeypatch):
    """Parsed here (markdown-it), and by worker processes (cmark-gfm where it agrees)."""
    pools = []
    if workers:
        monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
        monkeypatch.setattr(parallel, "CHUNK_FILES", 2)
        start = parallel.Parsing.start
        monkeypatch.setattr(parallel.Parsing, "start",
                            lambda self: pools.append(1) or start(self))
    settings = dataclasses.replace(
        settings, site=dataclasses.replace(settings.site, timezone="Europe/Lisbon"))
    inbox = settings.path(settings.ingest.inbox)
    shutil.rmtree(inbox)
    shutil.copytree(GOLDEN / "inbox", inbox)
    report = ingest(settings, store, NOW)
    assert report.quarantined == 0 and len(pools) == workers
    if workers:  # and the workers' engine, in this process, on each file alone
        monkeypatch.setattr(ingest_module, "parse_bytes", lambda data, key, settings:
                            parse_with(data, key, options_of(settings)))
    actual = {"parsed": parsed_output(settings), "stored": stored_output(store)}
    expected_file = GOLDEN / "expected.json"
    if os.environ.get("PUBLISHER_UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        pytest.fail("golden ingest output rewritten: review `git diff tests/golden/`")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    for key in expected["parsed"]:
        assert actual["parsed"][key] == expected["parsed"][key], key
    assert actual == expected
