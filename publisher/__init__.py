"""Publisher: articles in, feeds, archive pages and email digests out."""

__version__ = "0.1.0"
