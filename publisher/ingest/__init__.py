"""Ingest stage: new input becomes stored Articles.

    inbox.ingest(settings, store, now) -> IngestReport           files in the inbox
    sources.fetch_sources(settings, store, now) -> SourcesReport  upstream feeds

Parsers, one per kind of input: scraped.py (page text), markdown.py (.md with front
matter), source_entries.py (the entries of an upstream RSS, Atom or JSON feed).
"""
