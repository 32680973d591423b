"""Command line: `publisher serve`, the web app under uvicorn."""

from __future__ import annotations

import logging

import click

from publisher import tokens
from publisher.cli import cli, instance_option
from publisher.instance import Instance


class RedactTokens(logging.Filter):
    """Keeps link tokens out of the access log: whoever reads the log must not be able
    to unsubscribe people or read their private feeds."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, tokens.redact(str(path)), version, status)
        return True


@cli.command()
@click.option("--host", help="Address to listen on (default: [web] host).")
@click.option("--port", type=int, help="Port to listen on (default: [web] port).")
@instance_option
def serve(instance: Instance, host: str | None, port: int | None) -> None:
    """Serve the publish folder and the subscribe, preferences and unsubscribe pages."""
    import uvicorn

    from publisher.web import create_app

    settings = instance.settings
    app = create_app(settings, instance.store, clock=instance.clock)
    host, port = host or settings.web.host, port or settings.web.port
    click.echo(f"serving {settings.path(settings.feeds.folder)} on http://{host}:{port}/ "
               f"(public address: {settings.site.url})", err=True)
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    # proxy_headers: behind a proxy on this host, X-Forwarded-For names the client, so
    # the subscribe rate limit counts visitors, not the proxy.
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info",
                server_header=False)
