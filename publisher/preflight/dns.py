"""Preflight: TXT records from DNS (dnspython, already a dependency of dkimpy).

A lookup returns the records, an empty list when DNS answers that there are none, and
None when no answer is to be had (no resolver, no network, a timeout): then the
comparison is skipped, never reported as a problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dns.exception
import dns.resolver

log = logging.getLogger(__name__)

TxtLookup = Callable[[str], "list[str] | None"]


def resolver_lookup(resolver: dns.resolver.Resolver, seconds: float = 3.0) -> TxtLookup:
    def lookup(name: str) -> list[str] | None:
        try:
            answer = resolver.resolve(name, "TXT", lifetime=seconds)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            log.info("no DNS answer for %s: %s", name, exc)
            return None
        return [b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer]

    return lookup


def system_lookup(name: str) -> list[str] | None:
    """The system's resolver (/etc/resolv.conf); None when there is none."""
    try:
        resolver = dns.resolver.Resolver()
    except dns.exception.DNSException as exc:
        log.info("no DNS resolver: %s", exc)
        return None
    return resolver_lookup(resolver)(name)
