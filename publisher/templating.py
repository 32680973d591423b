"""Templates: the one Jinja2 environment factory pages, web forms and mail render with.

An instance's own `templates/` folder is searched first, then the templates shipped with
Publisher, so a site overrides a template by giving a file the same name. Undefined
names fail loudly (StrictUndefined) instead of rendering as empty text. Mail templates
trim the whitespace around block tags (`trim=True`), so plain-text mail reads as written.

Also here, since both the feeds stage (the form on index.html and article pages) and the
web stage (/subscribe, /preferences) render it: the time zone menu of the subscribe and
preferences forms, and a tiny script that preselects the browser's own zone (pages allow
exactly this script by its CSP hash).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import cache
from itertools import groupby
from pathlib import Path
from zoneinfo import available_timezones

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

import publisher
from publisher.config import Settings

INSTANCE_TEMPLATES = "templates"
# The one style sheet of the published pages, the web forms and the console.
STYLE_SHEET = "style.css"


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


def style_sheet(env: Environment, old_name: str) -> str:
    """The template to render the style sheet from: the instance's `style.css` if it has
    one, else its override under the name used before there was one sheet (`old_name`:
    pages/style.css for the published pages, web/style.css for the forms and console),
    else the shipped style.css. Publisher ships no file under the old names."""
    sheet = env.get_template(STYLE_SHEET)
    if sheet.filename and Path(sheet.filename).resolve().parent != shipped_templates().resolve():
        return STYLE_SHEET
    try:
        env.get_template(old_name)
    except TemplateNotFound:
        return STYLE_SHEET
    return old_name


# ---------------------------------------------------------------- the forms' time zones
# Preselects the browser's zone when nothing is chosen yet (a form shown again after an
# error keeps the person's choice). Without scripts the menu works as it is.
# The published pages' form has a hidden field instead of the long menu (it is on every
# article page); the script fills it, and without scripts the default zone applies.
ZONE_SCRIPT = (
    '(function(){var s=document.getElementById("timezone")||'
    'document.getElementsByName("timezone")[0];if(!s||s.value)return;'
    "try{var z=Intl.DateTimeFormat().resolvedOptions().timeZone;"
    'if(s.tagName==="INPUT"){s.value=z;return;}'
    "for(var i=0;i<s.options.length;i++){if(s.options[i].value===z){s.value=z;break;}}}"
    "catch(e){}})();")
ZONE_SCRIPT_HASH = "sha256-" + base64.b64encode(
    hashlib.sha256(ZONE_SCRIPT.encode()).digest()).decode()

# The delivery times offered on the forms (a time set by command line is kept too).
DELIVERY_TIMES = tuple(f"{hour:02d}:00" for hour in range(24))


@cache
def zone_groups() -> list[tuple[str, list[str]]]:
    """IANA zones grouped by region for the time zone menu (Etc/, posix/ left out)."""
    names = sorted(name for name in available_timezones()
                   if "/" in name and not name.startswith(("Etc/", "posix/", "right/",
                                                           "SystemV/", "US/")))
    return [(region, list(zones)) for region, zones in
            groupby(names, key=lambda name: name.split("/", 1)[0])] + [("Other", ["UTC"])]


def delivery_times(chosen: str) -> list[str]:
    """The hours on the menu, and a time set another way (--deliver-at 07:30) kept."""
    return sorted({*DELIVERY_TIMES, chosen} - {""})
