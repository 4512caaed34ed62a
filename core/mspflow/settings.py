"""Environment settings read in more than one place, parsed one way.

Boolean variables accept the same spellings everywhere: ``1 true yes on`` (any case) are true,
``0 false no off`` and the empty string are false; anything else is refused with a message naming the
variable, rather than silently read as false.

Examples::

    env_flag("MSPFLOW_STRICT_PLUGINS")              # False when unset
    env_flag("MSPFLOW_ALLOW_HTTP_VENDOR_URLS")
"""

from __future__ import annotations

import os

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


class SettingError(ValueError):
    """An environment variable holds a value mspflow cannot read; the message names it and what is accepted."""


def parse_flag(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise SettingError(f"{name}={value!r} is not a boolean; use one of 1/true/yes/on or 0/false/no/off")


def env_flag(name: str, default: bool = False) -> bool:
    """The boolean environment variable ``name`` (``default`` when unset)."""
    value = os.environ.get(name)
    return default if value is None else parse_flag(name, value)
