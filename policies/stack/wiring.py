"""Stack rules: every contract route reaches the app, every needed contract variable is wired.

SyncBot's own AWS template forgot ``/health`` and ``/api/federation/*``; these rules read the
routes and env vars from :mod:`infra.contract`, the same table the components wire from, so a
component that drops one fails the stack instead of failing in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pulumi_policy import PolicyResource, ReportViolation, Severity, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from infra.contract import AWS_SECRET_ARNS_ENV, ENV_BY_NAME, ROUTES, route_key
from policies.common import UNKNOWN, get_path, read_known, stack_rule, string_list
from policies.gcp.cloudrun import SERVICE_V2, iter_env

LAMBDA = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
HTTP_API = "aws:apigatewayv2/api:Api"
HTTP_ROUTE = "aws:apigatewayv2/route:Route"

# Route keys that hand every request to one integration.
_CATCH_ALL = frozenset({"$default", "ANY /{proxy+}"})
_INTERNAL_INGRESS = frozenset({"INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE"})
PUBLIC_URL = "SYNCBOT_PUBLIC_URL"
_DATABASE_PARTS = ("DATABASE_HOST", "DATABASE_USER", "DATABASE_PASSWORD", "DATABASE_SCHEMA")
DISPATCH = "SYNCBOT_DISPATCH"
DELIVERY_QUEUE = "SYNCBOT_DELIVERY_QUEUE"
DELIVERY_INVOKER = "SYNCBOT_DELIVERY_INVOKER"
# Nothing runs in a Lambda between invocations: in-process dispatch would leave every delivery
# to the next maintenance tick, minutes away.
LAMBDA_DISPATCH = "sqs"


@dataclass(frozen=True, slots=True)
class Workload:
    """An app process the stack deploys, with the env it receives."""

    resource: PolicyResource
    plain: Mapping[str, object]
    """Literal env values by name."""
    wired: frozenset[str]
    """Every env name the process receives, literal or by secret reference."""


def _lambda_workload(resource: PolicyResource) -> Workload | None:
    variables = get_path(resource.props, "environment", "variables", default={})
    if not isinstance(variables, Mapping):
        return None
    plain = {str(k): read_known(variables, k) for k in variables}
    wired = set(plain)
    raw_arns = plain.get(AWS_SECRET_ARNS_ENV)
    if raw_arns is UNKNOWN:
        # Which secrets the function reads is in this one computed value: unknown until up.
        raise UnknownValueError(
            UNKNOWN_STRING_VALUE, ["environment", "variables", AWS_SECRET_ARNS_ENV]
        )
    if isinstance(raw_arns, str) and raw_arns:
        try:
            arns = json.loads(raw_arns)
        except json.JSONDecodeError:
            arns = {}
        if isinstance(arns, Mapping):
            wired |= {str(name) for name in arns}
    if not wired & (ENV_BY_NAME.keys() | {AWS_SECRET_ARNS_ENV}):
        return None  # a helper function, not the app
    return Workload(resource, plain, frozenset(wired))


def _cloud_run_workload(resource: PolicyResource) -> Workload | None:
    plain: dict[str, object] = {}
    wired: set[str] = set()
    for env in iter_env(resource.resource_type, resource.props):
        name = str(get_path(env, "name", default=""))
        wired.add(name)
        if get_path(env, "valueSource") is None:
            value = read_known(env, "value")
            plain[name] = "" if value is None else value
    if not wired & ENV_BY_NAME.keys():
        return None
    return Workload(resource, plain, frozenset(wired))


def app_workloads(resources: Iterable[PolicyResource]) -> list[Workload]:
    """The app's serving processes: Lambda functions and Cloud Run services wired from the
    contract (helper functions without contract env are not the app)."""
    found: list[Workload] = []
    for resource in resources:
        workload = None
        if resource.resource_type == LAMBDA:
            workload = _lambda_workload(resource)
        elif resource.resource_type == SERVICE_V2:
            workload = _cloud_run_workload(resource)
        if workload is not None:
            found.append(workload)
    return found


def missing_variables(workload: Workload, extra: Iterable[str] = ()) -> list[str]:
    """Contract variables the workload needs but does not receive.

    Args:
        workload: The app process.
        extra: Further names the pack config requires.

    Returns:
        Missing names (a database alternative is shown as ``A or B+C``).
    """
    missing = [
        var.name
        for var in ENV_BY_NAME.values()
        if var.required_in_production and var.name not in workload.wired
    ]
    missing += [name for name in extra if name not in workload.wired]
    default_backend = ENV_BY_NAME["DATABASE_BACKEND"].default
    backend = str(workload.plain.get("DATABASE_BACKEND") or default_backend)
    if "DATABASE_URL" not in workload.wired:
        if backend == "sqlite":
            missing.append("DATABASE_URL")
        elif not all(part in workload.wired for part in _DATABASE_PARTS):
            missing.append("DATABASE_URL or " + "+".join(_DATABASE_PARTS))
    federation = str(workload.plain.get("SYNCBOT_FEDERATION_ENABLED", "false")).lower()
    # Peers call back on the public URL, so federation cannot work without it (contract).
    if federation in ("true", "1", "yes") and PUBLIC_URL not in workload.wired:
        missing.append(PUBLIC_URL)
    return missing + _missing_dispatch(workload)


def _missing_dispatch(workload: Workload) -> list[str]:
    """What the configured dispatcher needs (the app refuses to start without it)."""
    default_dispatch = ENV_BY_NAME[DISPATCH].default
    dispatch = str(workload.plain.get(DISPATCH) or default_dispatch)
    missing: list[str] = []
    if workload.resource.resource_type == LAMBDA and dispatch != LAMBDA_DISPATCH:
        missing.append(f"{DISPATCH}={LAMBDA_DISPATCH}")
        dispatch = LAMBDA_DISPATCH
    if dispatch != default_dispatch and DELIVERY_QUEUE not in workload.wired:
        missing.append(DELIVERY_QUEUE)
    if dispatch == "cloud_tasks":
        # Tasks carry the invoker's OIDC token and call back on the public URL.
        missing += [name for name in (DELIVERY_INVOKER, PUBLIC_URL) if name not in workload.wired]
    return missing


def unrouted(resources: Iterable[PolicyResource]) -> list[str] | None:
    """Contract routes the stack's public endpoint does not deliver.

    Returns:
        Missing route keys, or ``None`` when the stack has no public endpoint at all.
    """
    resources = list(resources)
    apis = [r for r in resources if r.resource_type == HTTP_API]
    if apis:
        routes = (r for r in resources if r.resource_type == HTTP_ROUTE)
        keys = {str(get_path(r.props, "routeKey")) for r in routes}
        if keys & _CATCH_ALL:
            return []
        return [
            route_key(route)
            for route in ROUTES
            if route_key(route) not in keys and f"ANY {route.path}" not in keys
        ]
    if any(r.resource_type == FUNCTION_URL for r in resources):
        return []  # a function URL passes every path to the function
    services = [r for r in resources if r.resource_type == SERVICE_V2]
    if any(get_path(s.props, "ingress") not in _INTERNAL_INGRESS for s in services):
        return []  # Cloud Run hands every path to the container
    return None


def validate_routes(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Report contract routes the public endpoint leaves out."""
    if not app_workloads(args.resources):
        return  # nothing is served by this stack (e.g. a bootstrap-only stack)
    missing = unrouted(args.resources)
    if missing is None:
        report_violation("the app has no public HTTPS endpoint.", None)
    elif missing:
        report_violation(f"routes not delivered to the app: {', '.join(missing)}.", None)


def validate_variables(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Report contract variables an app process does not receive."""
    extra = tuple(args.get_config().get("requiredVariables") or ())
    for workload in app_workloads(args.resources):
        missing = missing_variables(workload, extra)
        if missing:
            report_violation(
                f"{workload.resource.name} does not receive: {', '.join(missing)}.",
                workload.resource.urn,
            )


routes_wired = stack_rule(
    name="syncbot-stack-routes-wired",
    description="Every contract route must reach the app through the public endpoint.",
    validate=validate_routes,
    severity=Severity.HIGH,
)

variables_wired = stack_rule(
    name="syncbot-stack-variables-wired",
    description="Every contract variable the app needs must be wired to it.",
    validate=validate_variables,
    severity=Severity.HIGH,
    config={"requiredVariables": string_list()},
)

POLICIES = (routes_wired, variables_wired)
