"""Errors a user can cause, as one shallow tree; the CLI prints them on one line.

    PublisherError            anything the user can fix; never shown with a traceback
    ├── ConfigError           a bad setting: names the key, the value and what is accepted
    │   └── SettingsFileError  bad TOML, an unknown table, key or PUBLISHER_ variable
    ├── InputError            a file or entry that cannot become an article
    ├── AddressError          an email address or header value that is refused
    ├── TemplateError         a template that does not render (file:line)
    ├── StoreError            the database cannot be opened or upgraded
    └── DeliveryError         the mail transport is unusable as configured

Third-party errors are wrapped with `raise ... from` so the cause stays in debug logs.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(PublisherError):
    exit_code = 2

    def __init__(self, key: str, value: object, accepted: str):
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"setting {key} = {value!r} is not valid: expected {accepted}")


class SettingsFileError(ConfigError):
    """The settings as a whole: TOML syntax, an unknown table, key or PUBLISHER_ variable.
    The message is complete; values are never repeated (an unknown table may hold a
    password)."""

    def __init__(self, key: str, message: str):
        self.key, self.value, self.accepted = key, None, ""
        PublisherError.__init__(self, message)


class InputError(PublisherError):
    def __init__(self, source: str, reason: str):
        self.source, self.reason = source, reason
        super().__init__(f"{source}: {reason}")


class AddressError(PublisherError):
    pass


class TemplateError(PublisherError):
    pass


class StoreError(PublisherError):
    pass


class DeliveryError(PublisherError):
    pass
