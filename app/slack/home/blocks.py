"""Block Kit builders and modal-state readers: the only place the App Home spells Block Kit.

Slack refuses a whole view for one field over its limit, so the builders enforce the limits of
Slack's Block Kit reference (each cited where it is enforced):

* text a person reads is cut to its limit: a long workspace or channel name costs a few
  characters, never the whole home tab;
* identifiers (``block_id``, ``action_id``, ``callback_id``), values a click hands back and
  element counts are code's choice: one over its limit raises :class:`BlockKitError`, since a
  cut identifier or value would silently mean something else.

Docs: https://docs.slack.dev/reference/block-kit/blocks and
https://docs.slack.dev/reference/block-kit/block-elements,
https://docs.slack.dev/reference/block-kit/composition-objects,
https://docs.slack.dev/reference/views/modal-views.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

Block = dict[str, Any]
Style = Literal["primary", "danger"]

# Limits from Slack's Block Kit reference.
MAX_ID = 255  # block_id, action_id, callback_id (blocks, block elements, modal views)
MAX_SECTION_TEXT = 3000  # section block text; also a context element's text object
MAX_HEADER_TEXT = 150  # header block
MAX_CONTEXT_ELEMENTS = 10  # context block
MAX_ACTIONS_ELEMENTS = 25  # actions block
MAX_INPUT_LABEL = 2000  # input block label and hint
MAX_BUTTON_TEXT = 75  # button element text
MAX_BUTTON_VALUE = 2000  # button element value
MAX_CONFIRM_TITLE = 100  # confirmation dialog title
MAX_CONFIRM_TEXT = 300  # confirmation dialog text
MAX_CONFIRM_BUTTON = 30  # confirmation dialog confirm / deny
MAX_OPTION_TEXT = 75  # option object text
MAX_OPTION_VALUE = 150  # option object value
MAX_SELECT_OPTIONS = 100  # static select options
OVERFLOW_OPTIONS = range(2, 6)  # overflow menu: 2 to 5 options
MAX_PLACEHOLDER = 150  # placeholder of selects and plain-text inputs
MAX_INPUT_LENGTH = 3000  # plain-text input max_length
MAX_VIEW_TITLE = 24  # modal title, submit and close
MAX_METADATA = 3000  # a view's private_metadata
MAX_VIEW_BLOCKS = 100  # blocks of a modal or a home tab


class BlockKitError(ValueError):
    """A block the code built breaks a Block Kit limit that cutting text cannot fix."""


def _id(value: str, what: str) -> str:
    if not value or len(value) > MAX_ID:
        raise BlockKitError(f"{what} must be 1-{MAX_ID} characters: {value[:40]!r}")
    return value


def _at_most(items: Sequence[Any], limit: int, what: str) -> list[Any]:
    if len(items) > limit:
        raise BlockKitError(f"{what}: {len(items)} over Slack's limit of {limit}")
    return list(items)


# --- text objects ----------------------------------------------------------------------------


def plain_text(text: str, limit: int = MAX_SECTION_TEXT) -> Block:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def mrkdwn_text(text: str, limit: int = MAX_SECTION_TEXT) -> Block:
    return {"type": "mrkdwn", "text": text[:limit]}


# --- layout blocks ---------------------------------------------------------------------------


def header(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "header", "text": plain_text(text, MAX_HEADER_TEXT)}
    if block_id:
        block["block_id"] = _id(block_id, "block_id")
    return block


def section(text: str, block_id: str | None = None, *, accessory: Block | None = None) -> Block:
    """A section of mrkdwn ``text``, with a button or menu beside it if given."""
    block: Block = {"type": "section", "text": mrkdwn_text(text)}
    if block_id:
        block["block_id"] = _id(block_id, "block_id")
    if accessory is not None:
        block["accessory"] = accessory
    return block


def mrkdwn(text: str, block_id: str | None = None) -> Block:
    """A section of mrkdwn ``text`` (see :func:`section`)."""
    return section(text, block_id)


def context(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "context", "elements": [mrkdwn_text(text)]}
    if block_id:
        block["block_id"] = _id(block_id, "block_id")
    return block


def divider() -> Block:
    return {"type": "divider"}


def actions(block_id: str, *elements: Block) -> Block:
    return {
        "type": "actions",
        "block_id": _id(block_id, "block_id"),
        "elements": _at_most(elements, MAX_ACTIONS_ELEMENTS, "actions block elements"),
    }


# --- interactive elements --------------------------------------------------------------------


def confirm_dialog(
    title: str, text: str, *, yes: str = "Yes", no: str = "Cancel", style: Style | None = "danger"
) -> Block:
    """The "are you sure?" dialog Slack shows before a button's click is sent."""
    dialog: Block = {
        "title": plain_text(title, MAX_CONFIRM_TITLE),
        "text": mrkdwn_text(text, MAX_CONFIRM_TEXT),
        "confirm": plain_text(yes, MAX_CONFIRM_BUTTON),
        "deny": plain_text(no, MAX_CONFIRM_BUTTON),
    }
    if style:
        dialog["style"] = style
    return dialog


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: Style | None = None,
    confirm: Block | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "action_id": _id(action_id, "action_id"),
        "text": plain_text(text, MAX_BUTTON_TEXT),
    }
    if value:
        if len(value) > MAX_BUTTON_VALUE:
            raise BlockKitError(f"button value over {MAX_BUTTON_VALUE} characters")
        element["value"] = value
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def option(label: str, value: str) -> Block:
    if not value or len(value) > MAX_OPTION_VALUE:
        raise BlockKitError(f"an option value must be 1-{MAX_OPTION_VALUE} characters")
    return {"text": plain_text(label, MAX_OPTION_TEXT), "value": value}


def overflow(action_id: str, options: Sequence[Block]) -> Block:
    if len(options) not in OVERFLOW_OPTIONS:
        raise BlockKitError(f"an overflow menu takes 2-5 options, not {len(options)}")
    return {"type": "overflow", "action_id": _id(action_id, "action_id"), "options": list(options)}


def static_select(
    options: Sequence[Block],
    *,
    action_id: str = "value",
    placeholder: str = "",
    initial: Block | None = None,
) -> Block:
    if not options:
        raise BlockKitError("a static select needs one option at least")
    element: Block = {
        "type": "static_select",
        "action_id": _id(action_id, "action_id"),
        "options": _at_most(options, MAX_SELECT_OPTIONS, "static select options"),
    }
    if placeholder:
        element["placeholder"] = plain_text(placeholder, MAX_PLACEHOLDER)
    if initial is not None:
        element["initial_option"] = initial
    return element


def text_element(
    *,
    action_id: str = "value",
    max_length: int | None = None,
    placeholder: str = "",
    initial: str = "",
    multiline: bool = False,
) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": _id(action_id, "action_id")}
    if max_length is not None:
        element["max_length"] = min(max_length, MAX_INPUT_LENGTH)
    if multiline:
        element["multiline"] = True
    if placeholder:
        element["placeholder"] = plain_text(placeholder, MAX_PLACEHOLDER)
    if initial:  # Slack refuses an empty initial_value
        element["initial_value"] = initial
    return element


def users_select(
    *, action_id: str = "value", placeholder: str = "", initial_user: str | None = None
) -> Block:
    element: Block = {"type": "users_select", "action_id": _id(action_id, "action_id")}
    if placeholder:
        element["placeholder"] = plain_text(placeholder, MAX_PLACEHOLDER)
    if initial_user:
        element["initial_user"] = initial_user
    return element


def conversations_select(*, action_id: str = "value", shared: bool = True) -> Block:
    """A channel picker of public and private channels, no DMs with bots; without externally
    shared channels unless ``shared``."""
    found: Block = {"include": ["public", "private"], "exclude_bot_users": True}
    if not shared:
        found = {
            "include": ["public", "private"],
            "exclude_external_shared_channels": True,
            "exclude_bot_users": True,
        }
    return {
        "type": "conversations_select",
        "action_id": _id(action_id, "action_id"),
        "filter": found,
    }


def file_element(*, action_id: str = "value", max_files: int = 1) -> Block:
    return {"type": "file_input", "action_id": _id(action_id, "action_id"), "max_files": max_files}


# --- inputs ----------------------------------------------------------------------------------


def input_block(
    block_id: str, label: str, element: Block, *, optional: bool = False, hint: str = ""
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": _id(block_id, "block_id"),
        "label": plain_text(label, MAX_INPUT_LABEL),
        "element": element,
    }
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = plain_text(hint, MAX_INPUT_LABEL)
    return block


def text_input(block_id: str, label: str, *, max_length: int, placeholder: str = "") -> Block:
    element = text_element(max_length=max_length, placeholder=placeholder)
    return input_block(block_id, label, element)


def select_input(
    block_id: str, label: str, options: list[Block], *, initial: Block | None = None
) -> Block:
    """An input with a static select of ``options`` (Slack allows 100 at most)."""
    return input_block(block_id, label, static_select(options, initial=initial))


# --- views -----------------------------------------------------------------------------------


def modal(
    callback_id: str | None,
    title: str,
    blocks: Sequence[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    metadata: Any = None,
) -> Block:
    """A modal; ``metadata`` (JSON-able) comes back in its ``private_metadata``."""
    view: Block = {"type": "modal", "title": plain_text(title, MAX_VIEW_TITLE)}
    if callback_id is not None:
        view["callback_id"] = _id(callback_id, "callback_id")
    if submit is not None:
        view["submit"] = plain_text(submit, MAX_VIEW_TITLE)
    view["close"] = plain_text(close, MAX_VIEW_TITLE)
    view["blocks"] = _at_most(blocks, MAX_VIEW_BLOCKS, "modal blocks")
    if metadata is not None:
        view["private_metadata"] = _metadata_text(metadata)
    return view


def notice_view(title: str, text: str) -> Block:
    """A one-paragraph modal, for refusals, outcomes and errors of clicks and submissions."""
    return modal(None, title, [section(text)], close="Close")


def home_view(blocks: Sequence[Block], metadata: str) -> Block:
    """A home tab (100 blocks at most, as a modal)."""
    if len(metadata) > MAX_METADATA:
        raise BlockKitError(f"private_metadata over {MAX_METADATA} characters")
    return {
        "type": "home",
        "private_metadata": metadata,
        "blocks": _at_most(blocks, MAX_VIEW_BLOCKS, "home blocks"),
    }


def _metadata_text(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > MAX_METADATA:
        raise BlockKitError(f"private_metadata over {MAX_METADATA} characters")
    return text


# --- reading what Slack sends back -----------------------------------------------------------


def submitted(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The state of the single element of input ``block_id`` (empty when absent)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return next(iter(values.values()), {}) if isinstance(values, dict) else {}


def submitted_text(view: dict[str, Any], block_id: str) -> str:
    """What was typed into input ``block_id`` ("" when nothing)."""
    return str(submitted(view, block_id).get("value") or "")


def submitted_choice(view: dict[str, Any], block_id: str) -> str | None:
    """The value of the option chosen in select ``block_id``, if any."""
    chosen = submitted(view, block_id).get("selected_option") or {}
    value = chosen.get("value")
    return None if value is None else str(value)


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def first_input(view: dict[str, Any]) -> str | None:
    """The block id of the view's first input block, where a refusal or error is shown."""
    ids: Iterable[Any] = (
        b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"
    )
    return next((str(i) for i in ids if i), None)


__all__ = [
    "Block",
    "BlockKitError",
    "actions",
    "button",
    "confirm_dialog",
    "context",
    "conversations_select",
    "divider",
    "file_element",
    "first_input",
    "header",
    "home_view",
    "input_block",
    "metadata",
    "modal",
    "mrkdwn",
    "mrkdwn_text",
    "notice_view",
    "option",
    "overflow",
    "plain_text",
    "section",
    "select_input",
    "static_select",
    "submitted",
    "submitted_choice",
    "submitted_text",
    "text_element",
    "text_input",
    "users_select",
]
