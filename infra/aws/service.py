"""``Service``: the Lambda function behind an HTTP API serving every contract route."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.iam import allow, policy, service_trust_policy
from infra.aws.queue import consumer_statement
from infra.contract import AWS_SECRET_JSON_KEY_SEPARATOR, ROUTES, route_key

HANDLER = "app.lambda_handler.handler"
RUNTIME = "python3.12"
# The alias every caller (HTTP API, scheduler, queue) invokes; it moves to a newly published
# version only once that version's migration has succeeded.
LIVE_ALIAS = "live"
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latency": "$context.integrationLatency",
        "error": "$context.integrationErrorMessage",
    },
    sort_keys=True,
)


@dataclass
class Bundle:
    """The app package: a local zip, uploaded to the artifact store when one is given."""

    path: str
    sha256: str
    """Hex digest of the zip; names the S3 object and triggers code updates."""
    base64_sha256: str
    artifact_bucket: pulumi.Input[str] | None = None
    """Configured, or read from the bootstrap stack by a stack reference."""


@dataclass
class ServiceArgs:
    """Inputs of :class:`Service`."""

    bundle: Bundle
    environment: Mapping[str, pulumi.Input[str]]
    """Plain environment variables (from :func:`infra.aws.env.lambda_env`)."""
    secret_arns: Sequence[pulumi.Input[str]]
    """Secret ARNs the function may read (a ``#key`` suffix is stripped)."""
    api: aws.apigatewayv2.Api
    """The HTTP API, created first so its URL can be the function's ``SYNCBOT_PUBLIC_URL``."""
    subnet_ids: pulumi.Input[list[str]]
    security_group_id: pulumi.Input[str]
    architecture: str = "x86_64"
    memory_mb: int = 512
    timeout_seconds: int = 30
    reserved_concurrency: int | None = None
    log_retention_days: int = 30
    alarm_topic_arn: pulumi.Input[str] | None = None
    delivery_queue_arn: pulumi.Input[str] | None = None
    """The SQS delivery queue the function consumes and sends to (exact ARN)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    release_gate: Callable[[aws.lambda_.Function], Sequence[pulumi.Resource]] | None = None
    """Given the function (its new version published), the deploy steps the ``live`` alias
    waits for before it moves to that version: the schema migration."""


class Service(pulumi.ComponentResource):
    """Function, role, logs, the ``live`` alias, HTTP API routes and alarms.

    Each deploy publishes a version; callers invoke the ``live`` alias, which moves to the new
    version only after :attr:`ServiceArgs.release_gate` (the migration) succeeded, so new code
    never serves on an old schema and a failed migration leaves the old version live.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    """The ``live`` alias's ARN: what every caller invokes."""
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            description="syncbot function",
            assume_role_policy=json.dumps(service_trust_policy("lambda.amazonaws.com")),
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                self.log_group.arn, args.delivery_queue_arn, *args.secret_arns
            ).apply(lambda values: json.dumps(_function_policy(values[0], values[2:], values[1]))),
            opts=child,
        )
        code = _code(name, args.bundle, child)
        self.function = aws.lambda_.Function(
            f"{name}-fn",
            description="syncbot: Slack, Matrix and federation sync",
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[args.architecture],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            publish=True,
            role=self.role.arn,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment={"variables": dict(args.environment)},
            vpc_config={
                "subnet_ids": args.subnet_ids,
                "security_group_ids": [args.security_group_id],
            },
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            tracing_config={"mode": "Active"},
            source_code_hash=args.bundle.base64_sha256,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
            **code,
        )
        gate = list(args.release_gate(self.function)) if args.release_gate else []
        self.alias = aws.lambda_.Alias(
            f"{name}-live",
            name=LIVE_ALIAS,
            description="the version serving traffic (moved after its migration)",
            function_name=self.function.name,
            function_version=self.function.version,
            opts=pulumi.ResourceOptions(parent=self, depends_on=gate),
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=args.api.id,
            integration_type="AWS_PROXY",
            integration_uri=self.alias.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=min(args.timeout_seconds, 29) * 1000,
            opts=child,
        )
        target = self.integration.id.apply(lambda integration_id: f"integrations/{integration_id}")
        self.routes = {
            route_key(route): aws.apigatewayv2.Route(
                f"{name}-route-{_slug(route_key(route))}",
                api_id=args.api.id,
                route_key=route_key(route),
                target=target,
                opts=child,
            )
            for route in ROUTES
        }
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs", retention_in_days=args.log_retention_days, opts=child
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=args.api.id,
            name="$default",
            auto_deploy=True,
            access_log_settings={
                "destination_arn": self.access_logs.arn,
                "format": ACCESS_LOG_FORMAT,
            },
            default_route_settings={"throttling_burst_limit": 200, "throttling_rate_limit": 100},
            opts=child,
        )
        # Only this API may invoke the function, and only through its stages and routes.
        self.permission = aws.lambda_.Permission(
            f"{name}-api-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            qualifier=self.alias.name,
            principal="apigateway.amazonaws.com",
            source_arn=args.api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
            opts=child,
        )
        self.alarms = _alarms(name, self.function.name, args, child)
        self.function_name = self.function.name
        self.function_arn = self.alias.arn
        self.url = args.api.api_endpoint
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "url": self.url,
            }
        )


def _slug(key: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in key.lower())
    return "-".join(part for part in cleaned.split("-") if part)


def _code(name: str, bundle: Bundle, child: pulumi.ResourceOptions) -> dict[str, object]:
    if bundle.artifact_bucket is None:
        return {"code": pulumi.FileArchive(bundle.path)}
    obj = aws.s3.BucketObjectv2(
        f"{name}-bundle",
        bucket=bundle.artifact_bucket,
        key=f"bundles/{bundle.sha256}.zip",
        source=pulumi.FileAsset(bundle.path),
        content_type="application/zip",
        # A new bundle is a new key, so every deploy replaces this object. The deploy role may
        # not delete objects (it can only add bundles), and Lambda copied the code at deploy
        # anyway: Pulumi forgets the old object and the bucket's lifecycle rule expires it.
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
    )
    return {"s3_bucket": obj.bucket, "s3_key": obj.key}


def _function_policy(
    log_group_arn: str, secret_refs: Sequence[str], delivery_queue_arn: str | None = None
) -> dict[str, object]:
    secret_arns = sorted({ref.split(AWS_SECRET_JSON_KEY_SEPARATOR)[0] for ref in secret_refs})
    statements = [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        # ENI management for a VPC function; these actions do not support resource scoping.
        allow(
            [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            ["*"],
        ),
        allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
    ]
    if secret_arns:
        statements.append(allow(["secretsmanager:GetSecretValue"], secret_arns))
    if delivery_queue_arn is not None:
        statements.append(consumer_statement(delivery_queue_arn))
    return policy(*statements)


def _alarms(
    name: str,
    function_name: pulumi.Output[str],
    args: ServiceArgs,
    child: pulumi.ResourceOptions,
) -> list[aws.cloudwatch.MetricAlarm]:
    actions = [args.alarm_topic_arn] if args.alarm_topic_arn is not None else []
    specs = (
        ("errors", "Errors", 1, "function raised or timed out"),
        ("throttles", "Throttles", 1, "function hit its concurrency limit"),
    )
    alarms = [
        aws.cloudwatch.MetricAlarm(
            f"{name}-{slug}",
            alarm_description=f"syncbot: {what}",
            namespace="AWS/Lambda",
            metric_name=metric,
            dimensions={"FunctionName": function_name},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=actions,
            ok_actions=actions,
            opts=child,
        )
        for slug, metric, threshold, what in specs
    ]
    alarms.append(
        aws.cloudwatch.MetricAlarm(
            f"{name}-api-5xx",
            alarm_description="syncbot: HTTP API answered 5xx",
            namespace="AWS/ApiGateway",
            metric_name="5xx",
            dimensions={"ApiId": args.api.id, "Stage": "$default"},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=5,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=actions,
            ok_actions=actions,
            opts=child,
        )
    )
    return alarms
