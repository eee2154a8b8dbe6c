"""Cloud Monitoring for the service: an uptime check on ``/health`` and alert policies.

Without these a GCP deployment fails silently: nothing notices the service down or answering
5xx. Alerts notify an e-mail channel when the stack names one (required in production).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_gcp as gcp

from infra.contract import HEALTH_PATH


@dataclass
class MonitoringArgs:
    """Inputs of :class:`Monitoring`."""

    project: pulumi.Input[str]
    service_name: pulumi.Input[str]
    public_url: pulumi.Input[str]
    """The app's public base URL; the uptime check probes ``<url>/health``."""
    alert_email: str | None = None


class Monitoring(pulumi.ComponentResource):
    """Uptime check, an alert on it failing, and an alert on the service's 5xx answers."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        channels: list[pulumi.Input[str]] = []
        if args.alert_email is not None:
            channel = gcp.monitoring.NotificationChannel(
                f"{name}-email",
                project=args.project,
                display_name="syncbot alerts",
                type="email",
                labels={"email_address": args.alert_email},
                opts=child,
            )
            channels.append(channel.name)
        host = pulumi.Output.from_input(args.public_url).apply(lambda url: urlsplit(url).netloc)
        uptime = gcp.monitoring.UptimeCheckConfig(
            f"{name}-uptime",
            project=args.project,
            display_name=pulumi.Output.concat("syncbot ", args.service_name, " /health"),
            timeout="10s",
            period="300s",
            http_check={
                "path": HEALTH_PATH,
                "port": 443,
                "use_ssl": True,
                "validate_ssl": True,
                "request_method": "GET",
            },
            monitored_resource={
                "type": "uptime_url",
                "labels": {"project_id": args.project, "host": host},
            },
            opts=child,
        )
        gcp.monitoring.AlertPolicy(
            f"{name}-down",
            project=args.project,
            display_name=pulumi.Output.concat("syncbot ", args.service_name, " is down"),
            combiner="OR",
            conditions=[
                {
                    "display_name": "uptime check failing",
                    "condition_threshold": {
                        "filter": uptime.uptime_check_id.apply(
                            lambda check: (
                                'metric.type="monitoring.googleapis.com/uptime_check/check_passed"'
                                f' AND metric.label.check_id="{check}"'
                                ' AND resource.type="uptime_url"'
                            )
                        ),
                        "comparison": "COMPARISON_GT",
                        "threshold_value": 1,
                        "duration": "600s",
                        "aggregations": [
                            {
                                "alignment_period": "1200s",
                                "per_series_aligner": "ALIGN_NEXT_OLDER",
                                "cross_series_reducer": "REDUCE_COUNT_FALSE",
                                "group_by_fields": ["resource.label.*"],
                            }
                        ],
                    },
                }
            ],
            notification_channels=channels,
            opts=child,
        )
        gcp.monitoring.AlertPolicy(
            f"{name}-5xx",
            project=args.project,
            display_name=pulumi.Output.concat("syncbot ", args.service_name, " answers 5xx"),
            combiner="OR",
            conditions=[
                {
                    "display_name": "5xx responses",
                    "condition_threshold": {
                        "filter": pulumi.Output.from_input(args.service_name).apply(
                            lambda service: (
                                'metric.type="run.googleapis.com/request_count"'
                                ' AND resource.type="cloud_run_revision"'
                                f' AND resource.label.service_name="{service}"'
                                ' AND metric.label.response_code_class="5xx"'
                            )
                        ),
                        "comparison": "COMPARISON_GT",
                        "threshold_value": 5,
                        "duration": "0s",
                        "aggregations": [
                            {"alignment_period": "300s", "per_series_aligner": "ALIGN_SUM"}
                        ],
                    },
                }
            ],
            notification_channels=channels,
            opts=child,
        )
        self.register_outputs({})
