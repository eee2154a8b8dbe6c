"""Parsing an untrusted JSON request body into an object, or a clear refusal.

``json.loads`` accepts ``null``, ``[]`` and ``"x"`` as documents and raises ``RecursionError``
(not ``ValueError``) on deeply nested input; routes that index the result straight away turned
each of those into a 500. Every route that reads JSON from outside goes through here.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # far deeper than any payload we accept (Slack blocks nest about 6 levels)


class MalformedJson(ValueError):
    """The body is not a JSON object we are willing to read."""


def json_object(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON object in ``body``.

    Raises:
        MalformedJson: not UTF-8 JSON, not an object, or nested deeper than ``max_depth``.
    """
    try:
        data = json.loads(body)
    except RecursionError:
        raise MalformedJson("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedJson("expected a JSON object")
    if depth(data) > max_depth:
        raise MalformedJson("JSON nested too deeply")
    return data


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest
