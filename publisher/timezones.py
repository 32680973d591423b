"""Time zones on the subscribe and preferences forms: the menu, and a tiny script that
preselects the browser's own zone (pages allow exactly this script by its CSP hash).

Both the feeds stage (the form on index.html and article pages) and the web stage
(/subscribe, /preferences) render the menu, so it lives below both.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from itertools import groupby
from zoneinfo import available_timezones

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
