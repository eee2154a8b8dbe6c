"""The offline plan: a stack's resources and policy results without the CLI or a cloud.

``python -m stacks.plan CONFIG_FILE [--json]`` runs the Pulumi program under the mock runtime
with the config of a stack file (``Pulumi.dev.yaml``, ``stacks/examples/aws.yaml``), records
every registration, runs the policy pack over it (:mod:`policies.evaluate`) and prints the
resource tree and the findings. Secret values never reach the output: secure config becomes a
placeholder and anything the program marks secret is shown as ``[secret]``.

Exit status: 0 clean (advisories allowed), 1 a mandatory violation, 2 a config or program error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import pulumi  # noqa: F401  (imported here only to say clearly when it is missing)
    import yaml
except ModuleNotFoundError as _missing:  # the venv of `make run` has the app's packages only
    raise SystemExit(
        f"stacks.plan needs the Pulumi packages ({_missing.name} is not installed): run "
        "`make infra`, then `.venv/bin/python -m stacks.plan Pulumi.dev.yaml`"
    ) from None

from stacks.mock_cloud import MASK, Registration

if TYPE_CHECKING:
    from policies.evaluate import Resource, Violation

__all__ = ["MASK", "Plan", "PlanError", "main", "plan"]

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"

EXIT_OK, EXIT_VIOLATION, EXIT_CONFIG = 0, 1, 2


class PlanError(Exception):
    """The stack file or the program cannot be planned; the message says why."""


@dataclass(frozen=True, slots=True)
class StackFile:
    """A stack file's config, split the way the engine hands it to a program."""

    path: Path
    stack: str
    project: str
    raw: Mapping[str, Any]
    """Config keys to YAML values, ``{"secure": ...}`` for encrypted ones."""
    values: Mapping[str, str]
    """Config keys to engine strings; secure values replaced by placeholders."""
    secret_keys: frozenset[str]


def _project_name() -> str:
    try:
        document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    except FileNotFoundError:
        return "syncbot"
    return str(document.get("name", "syncbot")) if isinstance(document, Mapping) else "syncbot"


def _engine_value(value: Any) -> str:
    # The engine passes structured config as JSON text and YAML scalars as their text form.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _placeholder(key: str) -> str:
    # Deterministic, long enough for length checks, obviously not a real credential.
    return "offline-plan-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def read_stack_file(path: Path, *, stack: str | None = None) -> StackFile:
    """Read a stack file and split its config into engine values and secret keys.

    Args:
        path: ``Pulumi.<stack>.yaml`` or any YAML file with a ``config:`` mapping.
        stack: Stack name; defaults to ``<stack>`` of ``Pulumi.<stack>.yaml`` or the file stem.

    Returns:
        The parsed stack file.

    Raises:
        PlanError: The file is missing, not YAML, or has no ``config:`` mapping.
    """
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlanError(f"{path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from exc
    config = document.get("config") if isinstance(document, Mapping) else None
    if not isinstance(config, Mapping):
        raise PlanError(f"{path}: no 'config:' mapping")
    project = _project_name()
    raw: dict[str, Any] = {}
    for key, value in config.items():
        # Keys without a namespace belong to the project, as in the CLI.
        raw[str(key) if ":" in str(key) else f"{project}:{key}"] = value
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in raw.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[key] = _placeholder(key)
            secret_keys.add(key)
        else:
            values[key] = _engine_value(value)
    name = stack or (
        path.name[len("Pulumi.") : -len(".yaml")]
        if path.name.startswith("Pulumi.") and path.name.endswith(".yaml")
        else path.stem
    )
    return StackFile(path, name, project, raw, values, frozenset(secret_keys))


def with_required_secrets(stack: StackFile) -> tuple[StackFile, list[str]]:
    """Stand in placeholders for required secrets the file does not hold.

    Operators keep those secrets in their own stack (``pulumi config set --secret``), encrypted
    with a key the plan cannot use anyway, so a committed file without them plans the same as
    one with them; the plan says which ones it assumed.

    Returns:
        The completed stack file and one note per secret assumed.
    """
    from stacks.config import NAMESPACE, REQUIRED_APP_SECRETS

    if stack.raw.get(f"{NAMESPACE}:kind", "app") != "app":
        return stack, []
    absent = [
        f"{NAMESPACE}:{k}" for k in REQUIRED_APP_SECRETS if f"{NAMESPACE}:{k}" not in stack.raw
    ]
    if not absent:
        return stack, []
    raw = {**stack.raw, **{key: {"secure": "offline-plan"} for key in absent}}
    values = {**stack.values, **{key: _placeholder(key) for key in absent}}
    completed = StackFile(
        stack.path, stack.stack, stack.project, raw, values, stack.secret_keys | set(absent)
    )
    return completed, [f"{key} is not in the file; planned with a placeholder" for key in absent]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the program declared, and what the pack found."""

    stack: StackFile
    stack_urn: str
    resources: Sequence[Registration]
    outputs: Mapping[str, Any]
    """Masked exports."""
    violations: Sequence[Violation]
    notes: Sequence[str] = ()
    """What the plan assumed (secrets absent from the file, planned with placeholders)."""
    preview: bool = False
    """Planned as a first ``pulumi preview``: provider-computed values unknown."""
    policy_resources: Sequence[Resource] = ()
    """The resources as the rules saw them (plain values, options)."""

    @property
    def blind(self) -> list[Violation]:
        """Rules that could not judge a resource because a value they read was unknown.

        A real preview reports these as advisory and lets the change through unchecked until
        ``up``; a preview-mode plan lists them so a rule never silently goes blind.
        """
        return [v for v in self.violations if v.blind]


def plan(
    path: Path,
    *,
    stack: str | None = None,
    pack_config: Mapping[str, Any] | None = None,
    program: Path | None = None,
    preview: bool = False,
) -> Plan:
    """Validate a stack file, run the program on it under mocks and run the policy pack.

    Args:
        path: The stack file.
        stack: Stack name override (defaults from the file name).
        pack_config: Policy pack config, as ``--policy-pack-config`` takes it.
        program: The program's entry file (default: the project's ``__main__.py``).
        preview: Plan as the first ``pulumi preview`` of a new stack: every value a provider
            computes is unknown, as the policy pack sees it on a pull request.

    Returns:
        The plan.

    Raises:
        PlanError: The stack file is unreadable, its config invalid, or the program failed.
    """
    import pulumi

    from policies.evaluate import evaluate
    from stacks import mock_cloud
    from stacks.config import StackConfigError, parse_stack_config

    stack_file, notes = with_required_secrets(read_stack_file(path, stack=stack))
    try:
        parse_stack_config(stack_file.raw)
    except StackConfigError as exc:
        raise PlanError(f"{path}: {exc}") from exc
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The rules read stack config too (``syncbot:production``), so it stays installed until
    # they have run.
    pulumi.runtime.set_all_config(dict(stack_file.values), sorted(stack_file.secret_keys))
    entry = str(program or PROGRAM)

    def program_main() -> None:
        runpy.run_path(entry, run_name="__main__")

    try:
        try:
            run = mock_cloud.run(
                program_main,
                project=stack_file.project,
                stack=stack_file.stack,
                preview=preview,
            )
        except (StackConfigError, pulumi.RunError) as exc:
            # The program reports config problems (a missing bundle, say) as a RunError.
            raise PlanError(f"{path}: {exc}") from exc
        except Exception as exc:
            raise PlanError(f"{path}: the program failed: {type(exc).__name__}: {exc}") from exc
        resources = mock_cloud.policy_resources(run)
        violations = evaluate(
            resources,
            stack_urn=run.stack_urn,
            stack_outputs=run.outputs,
            pack_config=pack_config,
        )
    finally:
        pulumi.runtime.set_all_config({}, [])
    return Plan(
        stack_file,
        run.stack_urn,
        run.resources,
        run.masked_outputs,
        violations,
        notes,
        preview,
        resources,
    )


def to_json(result: Plan) -> dict[str, Any]:
    """The ``--json`` document: resources, outputs and violations, secrets masked."""
    names = {r.urn: r.name for r in result.resources}
    return {
        "resources": [
            {
                "type": r.typ,
                "name": r.name,
                "parent": names.get(r.parent or ""),
                "inputs": r.masked_inputs,
            }
            for r in result.resources
        ],
        "outputs": dict(result.outputs),
        "violations": [
            {
                "policy": v.policy,
                "enforcement": v.enforcement,
                "resource": v.resource,
                "message": v.message,
            }
            for v in result.violations
        ],
    }


def render_text(result: Plan) -> str:
    """The human view: the resource tree, the exports, then the policy findings."""
    children: dict[str | None, list[Registration]] = {}
    known = {r.urn for r in result.resources}
    for r in result.resources:
        children.setdefault(r.parent if r.parent in known else None, []).append(r)
    mode = " as a first preview" if result.preview else ""
    lines = [f"Stack {result.stack.project}/{result.stack.stack} ({result.stack.path}){mode}"]
    lines += [f"note: {note}" for note in result.notes]

    def walk(parent: str | None, prefix: str) -> None:
        entries = children.get(parent, [])
        for index, r in enumerate(entries):
            last = index == len(entries) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{r.typ}  {r.name}")
            walk(r.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    lines.append(f"{len(result.resources)} resources")
    lines.append("Outputs:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(result.outputs.items())] or ["  (none)"]
    names = {r.urn: r.name for r in result.resources}
    mandatory = sum(1 for v in result.violations if v.mandatory)
    advisory = len(result.violations) - mandatory
    blind = f", {len(result.blind)} blind (unknown until up)" if result.preview else ""
    lines.append(f"Policies: {mandatory} mandatory, {advisory} advisory{blind}")
    for v in result.violations:
        where = names.get(v.resource or "", "stack")
        lines.append(f"  [{v.enforcement}] {v.policy} ({where}): {v.message}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m stacks.plan",
        description="Plan a stack offline (mock runtime) and run the policy pack over it.",
    )
    parser.add_argument("config_file", type=Path, help="stack file, e.g. Pulumi.dev.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    parser.add_argument("--stack", help="stack name (default: from the file name)")
    parser.add_argument(
        "--policy-config", type=Path, help="policy pack config JSON (as --policy-pack-config)"
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="plan as the first `pulumi preview` of a new stack (provider outputs unknown); "
        "the rules that cannot judge an unknown value are listed as blind",
    )
    args = parser.parse_args(argv)
    try:
        pack_config = json.loads(args.policy_config.read_text()) if args.policy_config else None
        result = plan(
            args.config_file, stack=args.stack, pack_config=pack_config, preview=args.preview
        )
    except (PlanError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        print(json.dumps(to_json(result), indent=2, sort_keys=False))
    else:
        print(render_text(result))
    return EXIT_VIOLATION if any(v.mandatory for v in result.violations) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
