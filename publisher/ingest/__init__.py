"""Ingest stage: new input becomes stored Articles.

    inbox.ingest(settings, store, now, only=None) -> IngestReport  files in the inbox
                                        (scan.py: only those changed since they were read)
    sources.fetch_sources(settings, store, now) -> SourcesReport  upstream feeds

Parsers, one per kind of input: scraped.py (page text), markdown.py (.md with front
matter; cmark.py its C fast path), source_entries.py (the entries of an upstream RSS,
Atom or JSON feed). parse.py picks an inbox file's parser; parallel.py runs it in worker
processes when a pass has many files.
"""
