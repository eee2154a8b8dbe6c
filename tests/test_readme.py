"""The README's configuration table is generated from ``app.settings.describe()``.

Regenerate it with ``python -m tests.test_readme`` and paste the output between the markers.
"""

from __future__ import annotations

from pathlib import Path

from app.scopes import BOT_EVENTS
from app.settings import describe
from infra.contract import ENV_BY_NAME

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"

# Variables the app reads that the deploy contract does not set.
APP_ONLY = {
    "SYNCBOT_FEDERATION_ALLOW_PRIVATE": "allow peers on private addresses (tests, labs)",
    "SYNCBOT_EGRESS_ALLOW": "comma-separated non-public CIDRs outbound fetches may reach",
    "SYNCBOT_DATA_DIR": "directory of the embedded SQLite file and the local dev key",
    "SYNCBOT_SLACK_RATE_SCALE": "speeds up Slack pacing; only against a fake Slack (tests, bench)",
    "SYNCBOT_DELIVERY_MAX_AGE_HOURS": "how long deliveries to a failing target are kept "
    "(held, retried) before they are dead",
    "LOG_FORMAT": "json or text (default: json for serve, text for the other commands)",
}


def config_table() -> str:
    rows = ["| Variable | Default | Secret | Meaning |", "|---|---|---|---|"]
    for name, default, secret in describe():
        meaning = ENV_BY_NAME[name].description if name in ENV_BY_NAME else APP_ONLY[name]
        shown = f"`{default}`" if default else ""
        rows.append(f"| `{name}` | {shown} | {'yes' if secret else ''} | {meaning} |")
    return "\n".join(rows)


def test_readme_table_matches_settings() -> None:
    text = README.read_text()
    assert START in text and END in text
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == config_table(), "regenerate with: python -m tests.test_readme"


def test_readme_has_the_two_commands_and_sections() -> None:
    text = README.read_text()
    for needle in ("make run", "make test", "## Slack", "## Matrix", "## Infrastructure"):
        assert needle in text
    assert "docs/infrastructure.md" in text


def test_readme_getting_started_has_exactly_two_commands() -> None:
    section = README.read_text().split("## Getting started", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


def test_readme_slack_section_lists_every_event_the_manifest_subscribes() -> None:
    # Following the README by hand must give the same app as `syncbot manifest` (App Home too).
    section = README.read_text().split("## Slack", 1)[1].split("\n## ", 1)[0]
    listed = section.split("<!-- bot-events:start -->", 1)[1].split("<!-- bot-events:end -->")[0]
    names = [name.strip().strip("`") for name in listed.replace("\n", " ").split(",")]
    assert names == sorted(BOT_EVENTS)


if __name__ == "__main__":
    print(config_table())
