"""The App Home section kit: one access check and refusal for every route, and Block Kit built
within Slack's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from sqlalchemy import Engine

from app.core.endpoints import Endpoint
from app.services import Services
from app.slack.home import app as shell
from app.slack.home import blocks as bk
from app.slack.home.access import REFUSED, REFUSED_OPERATOR, refusal_answer
from app.slack.home.kit import OnClick, Route, Section
from app.slack.home.section import Viewer
from app.slack.home.sections.backup import BackupSection
from app.slack.home.sections.channels import ChannelsSection
from app.slack.home.sections.federation import FederationSection
from app.slack.home.sections.groups import CREATE, GroupsSection
from app.slack.home.sections.mappings import PAGE, MappingsSection
from app.slack.home.sections.matrix_link import MatrixLinkSection
from app.store.groups import MAX_GROUP_NAME, Groups
from fakeslack import FakeSlack
from tests.slack.home_bolt import (
    RecordingHome,
    ack_body,
    block_action,
    block_objects,
    bolt_app,
    dispatch,
    home_services,
    on_shell,
    opened_views,
    sync,
    texts,
    three_teams,
    view_submission,
)

# The kit is backend-neutral: its tests that need a database use SQLite.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

SECTIONS: tuple[Callable[[Services], Section], ...] = (
    GroupsSection,
    ChannelsSection,
    MappingsSection,
    MatrixLinkSection,
    FederationSection,
    BackupSection,
)
# Methods by which a handler that ran would have changed or shown something.
EFFECTS = (
    "views.push",
    "views.update",
    "chat.postMessage",
    "conversations.join",
    "files.getUploadURLExternal",
)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = three_teams()
    fake.add_user("T1", "UM", "member")  # no admin, in the primary workspace
    yield fake
    fake.stop()


@pytest.fixture
def services(slack: FakeSlack, engine: Engine) -> Services:
    built = home_services(
        slack, engine, primary_workspace="T1", enable_db_reset=True, federation_enabled=True
    )
    sync(built, "general", Endpoint.slack("T1", "C1"), Endpoint.slack("T2", "C2"))
    return built


def as_checked(slack: FakeSlack, viewer: Viewer) -> AsyncApp:
    """A Bolt app whose every request carries ``viewer`` as the shell's checked viewer."""
    app = bolt_app(slack)

    async def checked(context: Any, next_: Callable[[], Any]) -> Any:
        context["viewer"] = viewer
        return await next_()

    app.middleware(checked)
    return app


def every_route(services: Services, app: AsyncApp, home: RecordingHome) -> list[Route]:
    routes: list[Route] = []
    for build in SECTIONS:
        section = build(services)
        section.register(app, home)
        routes += section.routes()
    return routes


def action_id(route: OnClick) -> str:
    return route.action_id if isinstance(route.action_id, str) else f"{PAGE}.next"


@sqlite_only
@pytest.mark.parametrize("team, user", [("T2", "UB"), ("T1", "UM")])
async def test_every_route_refuses_a_non_admin_with_its_levels_one_message(
    services: Services, slack: FakeSlack, team: str, user: str
) -> None:
    # Past the shell's gate (REQUIRE_ADMIN off lets the shell pass everyone as checked, but
    # here as a non-admin): each route checks again and refuses before its handler runs.
    app = as_checked(slack, Viewer(team, user, is_admin=False))
    home = RecordingHome()
    routes = every_route(services, app, home)
    clicks = [r for r in routes if isinstance(r, OnClick)]
    assert len(clicks) > 15 and len(routes) > len(clicks) + 5

    for route in routes:
        if isinstance(route, OnClick):
            before = len(opened_views(slack, team))
            await dispatch(app, block_action(team, user, action_id(route), value="1"))
            (refusal,) = opened_views(slack, team)[before:]
            assert refusal["title"]["text"] == "Not allowed"
            assert texts(refusal["blocks"]) == route.need.refusal, route
        else:
            form = bk.modal(
                route.callback_id, "Form", [bk.text_input("x", "X", max_length=10)], submit="Go"
            )
            answer = ack_body(await dispatch(app, view_submission(team, user, form, {})))
            assert answer["response_action"] == "errors", route
            assert list(answer["errors"].values()) == [route.need.refusal], route

    for method in EFFECTS:
        assert slack.called(method, team) == [], method
    assert home.refreshed == [] and home.touched == []
    assert {route.need.refusal for route in routes} == {REFUSED, REFUSED_OPERATOR}


@sqlite_only
async def test_the_shell_refuses_in_the_same_words_as_the_sections(
    services: Services, slack: FakeSlack
) -> None:
    assert shell.REFUSED == REFUSED
    app, _ = on_shell(services, GroupsSection(services))
    await dispatch(app, block_action("T2", "UB", CREATE))
    assert texts(opened_views(slack, "T2")[-1]["blocks"]) == REFUSED
    form = bk.modal(CREATE, "Create a group", [bk.text_input("name", "N", max_length=80)])
    answer = ack_body(await dispatch(app, view_submission("T2", "UB", form, {})))
    assert answer == {"response_action": "errors", "errors": {"name": REFUSED}}


@sqlite_only
async def test_an_admin_passes_the_check(services: Services, slack: FakeSlack) -> None:
    app = as_checked(slack, Viewer("T2", "UADMINT2", is_admin=True))
    every_route(services, app, RecordingHome())
    await dispatch(app, block_action("T2", "UADMINT2", CREATE))
    (opened,) = opened_views(slack, "T2")
    assert opened["callback_id"] == CREATE


# --- Block Kit limits ------------------------------------------------------------------------
# Written out here from Slack's reference, independently of blocks.py:
# https://docs.slack.dev/reference/block-kit/blocks/section-block (text 3000, block_id 255),
# .../blocks/header-block (150), .../blocks/actions-block (25 elements),
# .../blocks/context-block (10 elements), .../blocks/input-block (label, hint 2000),
# .../block-elements/button-element (text 75, action_id 255, value 2000),
# .../block-elements/overflow-menu-element (2-5 options),
# .../block-elements/select-menu-element (100 options, placeholder 150),
# .../composition-objects/option-object (text 75, value 150),
# .../composition-objects/confirmation-dialog-object (title 100, text 300, buttons 30),
# https://docs.slack.dev/reference/views/modal-views (title, submit, close 24;
# private_metadata 3000; callback_id 255; 100 blocks).


def _text(obj: Any) -> str:
    return str((obj or {}).get("text", ""))


def slack_limit_violations(tree: Any) -> list[str]:
    bad: list[str] = []

    def over(what: str, text: str, limit: int) -> None:
        if len(text) > limit:
            bad.append(f"{what}: {len(text)} > {limit}")

    for node in block_objects(tree):
        for key in ("block_id", "action_id", "callback_id"):
            if key in node and not 1 <= len(node[key]) <= 255:
                bad.append(f"{key} {node[key][:20]!r}")
        kind = node.get("type")
        if kind == "section":
            over("section text", _text(node.get("text")), 3000)
        elif kind == "header":
            over("header", _text(node.get("text")), 150)
        elif kind == "actions" and len(node["elements"]) > 25:
            bad.append("actions elements")
        elif kind == "context" and len(node["elements"]) > 10:
            bad.append("context elements")
        elif kind == "input":
            over("input label", _text(node.get("label")), 2000)
            over("input hint", _text(node.get("hint")), 2000)
        elif kind == "button":
            over("button text", _text(node.get("text")), 75)
            over("button value", str(node.get("value", "")), 2000)
        elif kind == "overflow" and not 2 <= len(node["options"]) <= 5:
            bad.append("overflow options")
        elif kind == "static_select" and not 1 <= len(node["options"]) <= 100:
            bad.append("static_select options")
        elif kind == "modal":
            for key in ("title", "submit", "close"):
                over(f"modal {key}", _text(node.get(key)), 24)
            over("private_metadata", str(node.get("private_metadata", "")), 3000)
            if len(node["blocks"]) > 100:
                bad.append("modal blocks")
        if "placeholder" in node:
            over("placeholder", _text(node["placeholder"]), 150)
        if "confirm" in node and isinstance(node["confirm"], dict) and "deny" in node["confirm"]:
            dialog = node["confirm"]
            over("confirm title", _text(dialog["title"]), 100)
            over("confirm text", _text(dialog["text"]), 300)
            over("confirm button", _text(dialog["confirm"]), 30)
            over("deny button", _text(dialog["deny"]), 30)
        if "value" in node and "text" in node and "type" not in node:  # an option object
            over("option text", _text(node["text"]), 75)
            over("option value", str(node["value"]), 150)
    return bad


LONG = "x" * 5000


def test_the_validator_catches_what_slack_refuses() -> None:
    raw = {"type": "button", "action_id": "a" * 256, "text": {"text": LONG}, "value": LONG}
    assert len(slack_limit_violations(raw)) == 3


def test_builders_cut_every_text_a_person_reads_to_slacks_limits() -> None:
    confirm = bk.confirm_dialog(LONG, LONG, yes=LONG, no=LONG)
    select = bk.static_select([bk.option(LONG, "v")], placeholder=LONG)
    view = bk.modal(
        "home.test.view",
        LONG,
        [
            bk.header(LONG),
            bk.section(
                LONG, "home.test.section", accessory=bk.button(LONG, "a1", confirm=confirm)
            ),
            bk.context(LONG),
            bk.input_block("in", LONG, select, hint=LONG),
            bk.input_block("text", "T", bk.text_element(placeholder=LONG, max_length=10**6)),
            bk.actions("home.test.actions", bk.button(LONG, "a2")),
        ],
        submit=LONG,
        close=LONG,
    )
    assert slack_limit_violations(view) == []
    # Cut, not replaced: what is shown is the start of what was meant.
    assert view["blocks"][1]["text"]["text"] == LONG[:3000]
    assert view["blocks"][0]["text"]["text"] == LONG[:150]
    assert view["blocks"][4]["element"]["max_length"] == 3000
    assert view["title"]["text"] == LONG[:24]


@pytest.mark.parametrize(
    "build",
    [
        lambda: bk.section("t", "b" * 256),
        lambda: bk.button("t", "a" * 256),
        lambda: bk.button("t", ""),
        lambda: bk.button("t", "a", "v" * 2001),
        lambda: bk.option("t", "v" * 151),
        lambda: bk.overflow("a", [bk.option("t", "v")]),
        lambda: bk.overflow("a", [bk.option("t", str(i)) for i in range(6)]),
        lambda: bk.actions("b", *[bk.button("t", f"a{i}") for i in range(26)]),
        lambda: bk.static_select([bk.option("t", str(i)) for i in range(101)]),
        lambda: bk.static_select([]),
        lambda: bk.modal("c" * 256, "t", []),
        lambda: bk.modal("c", "t", [bk.divider()] * 101),
        lambda: bk.modal("c", "t", [], metadata={"m": "x" * 3000}),
        lambda: bk.home_view([bk.divider()] * 101, "{}"),
    ],
)
def test_builders_refuse_identifiers_values_and_counts_over_slacks_limits(
    build: Callable[[], Any],
) -> None:
    # Cutting these would change what a click means, or drop part of a view silently.
    with pytest.raises(bk.BlockKitError):
        build()


@sqlite_only
async def test_sections_render_long_names_within_slacks_limits(
    services: Services, slack: FakeSlack
) -> None:
    groups = Groups(services.sessions)
    long_name = "G" * MAX_GROUP_NAME
    group = groups.create("T1", long_name)
    groups.invite(group.id, "T1", "T2")
    admin = Viewer("T1", "UADMINT1", is_admin=True)
    invited = Viewer("T2", "UADMINT2", is_admin=True)
    for viewer in (admin, invited):
        for build in (GroupsSection, ChannelsSection):
            rendered = await build(services).blocks(viewer)
            assert rendered and slack_limit_violations(rendered) == []
    blocks = await GroupsSection(services).blocks(admin)
    leave = next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if "confirm" in e
    )
    assert leave["confirm"]["title"]["text"] == f"Leave {long_name}?"[:100]


def test_a_refused_submission_is_answered_on_its_form_or_with_a_notice() -> None:
    form = bk.modal("c", "F", [bk.section("s"), bk.text_input("a", "A", max_length=5)])
    assert refusal_answer(form, REFUSED) == {"response_action": "errors", "errors": {"a": REFUSED}}
    assert refusal_answer(form, REFUSED, "b")["errors"] == {"b": REFUSED}
    # No input to show it on (Slack accepts errors only for input blocks): the modal becomes
    # the refusal.
    answer = refusal_answer(bk.modal("c", "F", [bk.section("s")]), REFUSED_OPERATOR)
    assert answer["response_action"] == "update"
    assert texts(answer["view"]["blocks"]) == REFUSED_OPERATOR
    assert slack_limit_violations(answer["view"]) == []
