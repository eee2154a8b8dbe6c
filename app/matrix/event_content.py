"""Event content built as JSON, handed to mautrix typed.

mautrix's ``send_message_event`` sends what it is given, serializing only its own content
classes, but its signature names only those classes. :class:`mautrix.types.Obj` is the one it
offers for arbitrary JSON: it serializes back to exactly the dict it was built from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mautrix.types import Obj


def as_content(content: Mapping[str, Any]) -> Obj:
    """``content`` (JSON: dicts, lists, scalars) as event content mautrix's types accept."""
    return Obj.deserialize(dict(content))
