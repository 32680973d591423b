"""Templates: the Jinja2 environment pages and mail render with.

An instance's own `templates/` folder is searched first, then the templates shipped with
Publisher, so a site overrides a template by giving a file the same name. Undefined
names fail loudly (StrictUndefined) instead of rendering as empty text.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

import publisher
from publisher.config import Settings

INSTANCE_TEMPLATES = "templates"


def shipped_templates() -> Path:
    """publisher/templates in an installed wheel; the repository's templates/ otherwise."""
    package = Path(publisher.__file__).resolve().parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


def template_folders(settings: Settings) -> list[Path]:
    """Where templates are looked up, in order."""
    return [settings.path(INSTANCE_TEMPLATES), shipped_templates()]


def template_env(settings: Settings, autoescape: bool = True) -> Environment:
    """An environment that escapes everything it puts into .html and .xml templates."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in template_folders(settings)]),
        autoescape=select_autoescape(("html", "htm", "xml")) if autoescape else False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
