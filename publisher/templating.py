"""Templates: the one Jinja2 environment factory pages, web forms and mail render with.

An instance's own `templates/` folder is searched first, then the templates shipped with
Publisher, so a site overrides a template by giving a file the same name. Undefined
names fail loudly (StrictUndefined) instead of rendering as empty text. Mail templates
trim the whitespace around block tags (`trim=True`), so plain-text mail reads as written.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def template_env(settings: Settings, autoescape: bool = True, trim: bool = False) -> Environment:
    """An environment that escapes everything it puts into .html and .xml templates."""
    return environment(template_folders(settings), autoescape, trim)


def environment(folders: Sequence[Path], autoescape: bool = True,
                trim: bool = False) -> Environment:
    """The environment over `folders`, searched in order (see template_env)."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
        autoescape=select_autoescape(("html", "htm", "xml")) if autoescape else False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=trim,
        lstrip_blocks=trim,
    )
