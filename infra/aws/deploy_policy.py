"""The deploy role's permissions: what ``pulumi up`` of one app stack needs, and no more.

Resources the app stack creates are named from its prefix (``syncbot-<env>-app``), so most
statements are scoped by ARN pattern. EC2 and API Gateway v2 resources have no names in their
ARNs: creation is allowed only with the stack tag and changes only on resources carrying it.
``Describe*``/``List*`` calls that IAM cannot scope are granted on ``*`` (read-only).
"""

from __future__ import annotations

from infra.aws.iam import Document, allow, policy

STACK_TAG = "syncbot:stack"
# Services the deploy role may hand roles to (the function, the scheduler, RDS monitoring).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
)
PASS_ROLE_SERVICES = ("lambda.amazonaws.com", "scheduler.amazonaws.com")


def deploy_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    prefix: str,
    artifact_bucket_arn: str,
) -> Document:
    """Builds the deploy role's inline policy.

    Args:
        partition: The AWS partition (``aws``).
        region: The app stack's region.
        account_id: The account the app stack deploys into.
        prefix: The app stack's resource name prefix (``syncbot-prod-app``).
        artifact_bucket_arn: The artifact store the deploy uploads bundles to.

    Returns:
        The policy document.
    """
    arn = f"arn:{partition}"
    here = f"{region}:{account_id}"
    tagged = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": prefix}}
    tagging = {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": prefix}}
    return policy(
        allow(
            ["s3:GetObject", "s3:PutObject", "s3:GetObjectTagging", "s3:PutObjectTagging"],
            [f"{artifact_bucket_arn}/*"],
        ),
        allow(["s3:ListBucket", "s3:GetBucketLocation"], [artifact_bucket_arn]),
        allow(
            [
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:ListVersionsByFunction",
                "lambda:PublishVersion",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
                "lambda:GetFunctionConcurrency",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:GetPolicy",
                "lambda:InvokeFunction",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:ListTags",
                "lambda:GetRuntimeManagementConfig",
                "lambda:PutRuntimeManagementConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                "lambda:DeleteAlias",
                "lambda:GetAlias",
            ],
            [f"{arn}:lambda:{here}:function:{prefix}-*"],
        ),
        allow(
            [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:ListInstanceProfilesForRole",
            ],
            [f"{arn}:iam::{account_id}:role/{prefix}-*"],
        ),
        allow(
            ["iam:PassRole"],
            [f"{arn}:iam::{account_id}:role/{prefix}-*"],
            StringEquals={"iam:PassedToService": list(PASS_ROLE_SERVICES)},
        ),
        allow(
            [
                "scheduler:CreateSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
                "scheduler:GetSchedule",
                "scheduler:TagResource",
                "scheduler:UntagResource",
                "scheduler:ListTagsForResource",
            ],
            [f"{arn}:scheduler:{here}:schedule/default/{prefix}-*"],
        ),
        allow(
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:UpdateSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:GetSecretValue",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
            ],
            [f"{arn}:secretsmanager:{here}:secret:{prefix}-*"],
        ),
        # RDS creates and rotates the managed master secret in the caller's name.
        allow(
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:TagResource",
                "secretsmanager:RotateSecret",
                "secretsmanager:DeleteSecret",
            ],
            [f"{arn}:secretsmanager:{here}:secret:rds!*"],
        ),
        allow(
            ["kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey", "kms:Decrypt"],
            ["*"],
            StringEquals={
                "kms:ViaService": [
                    f"rds.{region}.amazonaws.com",
                    f"secretsmanager.{region}.amazonaws.com",
                ]
            },
        ),
        allow(
            [
                "rds:CreateDBInstance",
                "rds:DeleteDBInstance",
                "rds:ModifyDBInstance",
                "rds:RebootDBInstance",
                "rds:AddTagsToResource",
                "rds:RemoveTagsFromResource",
                "rds:ListTagsForResource",
                "rds:CreateDBSubnetGroup",
                "rds:ModifyDBSubnetGroup",
                "rds:DeleteDBSubnetGroup",
                "rds:CreateDBParameterGroup",
                "rds:ModifyDBParameterGroup",
                "rds:DeleteDBParameterGroup",
                "rds:DescribeDBParameters",
                "rds:CreateDBSnapshot",
            ],
            [
                f"{arn}:rds:{here}:db:{prefix}-*",
                f"{arn}:rds:{here}:subgrp:{prefix}-*",
                f"{arn}:rds:{here}:pg:{prefix}-*",
                f"{arn}:rds:{here}:snapshot:{prefix}-*",
                # CreateDBInstance also authorizes against the engine's default option group.
                f"{arn}:rds:{here}:og:default:*",
            ],
        ),
        allow(
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:ListTagsForResource",
            ],
            [
                f"{arn}:logs:{here}:log-group:/aws/lambda/{prefix}-*",
                f"{arn}:logs:{here}:log-group:{prefix}-*",
            ],
        ),
        allow(
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
                "cloudwatch:ListTagsForResource",
            ],
            [f"{arn}:cloudwatch:{here}:alarm:{prefix}-*"],
        ),
        # The delivery queues are named from the prefix (``<prefix>-deliveries[-dlq].fifo``).
        allow(
            [
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListDeadLetterSourceQueues",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:ListQueueTags",
            ],
            [f"{arn}:sqs:{here}:{prefix}-*"],
        ),
        # Event source mappings have generated ids: allowed only for the stack's functions.
        allow(
            [
                "lambda:CreateEventSourceMapping",
                "lambda:GetEventSourceMapping",
                "lambda:UpdateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
            ],
            ["*"],
            ArnLike={"lambda:FunctionArn": f"{arn}:lambda:{here}:function:{prefix}-*"},
        ),
        allow(
            ["lambda:TagResource", "lambda:UntagResource", "lambda:ListTags"],
            [f"{arn}:lambda:{here}:event-source-mapping:*"],
        ),
        allow(
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:Unsubscribe",
                "sns:GetSubscriptionAttributes",
                "sns:TagResource",
                "sns:ListTagsForResource",
            ],
            [f"{arn}:sns:{here}:{prefix}-*"],
        ),
        # API Gateway v2 and EC2 ARNs carry ids, not names: gate on the stack tag.
        allow(["apigateway:POST"], [f"{arn}:apigateway:{region}::/apis"], **tagging),
        allow(
            [
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PATCH",
                "apigateway:PUT",
                "apigateway:DELETE",
            ],
            [f"{arn}:apigateway:{region}::/apis/*", f"{arn}:apigateway:{region}::/tags/*"],
        ),
        allow(
            [
                "ec2:CreateVpc",
                "ec2:CreateSubnet",
                "ec2:CreateSecurityGroup",
                "ec2:CreateInternetGateway",
                "ec2:CreateNatGateway",
                "ec2:AllocateAddress",
                "ec2:CreateRouteTable",
                "ec2:CreateVpcEndpoint",
            ],
            ["*"],
            **tagging,
        ),
        allow(
            [
                "ec2:DeleteVpc",
                "ec2:ModifyVpcAttribute",
                "ec2:DeleteSubnet",
                "ec2:ModifySubnetAttribute",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:AttachInternetGateway",
                "ec2:DetachInternetGateway",
                "ec2:DeleteInternetGateway",
                "ec2:DeleteNatGateway",
                "ec2:ReleaseAddress",
                "ec2:AssociateAddress",
                "ec2:DisassociateAddress",
                "ec2:CreateRoute",
                "ec2:DeleteRoute",
                "ec2:DeleteRouteTable",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
                "ec2:DeleteVpcEndpoints",
                "ec2:ModifyVpcEndpoint",
                "ec2:DeleteTags",
            ],
            ["*"],
            **tagged,
        ),
        # Tags may only be written while creating a tagged resource or on the stack's own.
        allow(
            ["ec2:CreateTags"],
            ["*"],
            StringEquals={
                "ec2:CreateAction": [
                    "CreateVpc",
                    "CreateSubnet",
                    "CreateSecurityGroup",
                    "CreateInternetGateway",
                    "CreateNatGateway",
                    "AllocateAddress",
                    "CreateRouteTable",
                    "CreateVpcEndpoint",
                ]
            },
        ),
        allow(
            ["iam:CreateServiceLinkedRole"],
            [f"{arn}:iam::{account_id}:role/aws-service-role/rds.amazonaws.com/*"],
            StringEquals={"iam:AWSServiceName": "rds.amazonaws.com"},
        ),
        # HTTP API access logging: CloudWatch Logs' delivery actions have no resource scope.
        allow(list(LOG_DELIVERY_ACTIONS), ["*"]),
        allow(
            [
                "ec2:Describe*",
                "rds:DescribeDBInstances",
                "rds:DescribeDBSubnetGroups",
                "rds:DescribeDBParameterGroups",
                "rds:DescribeDBEngineVersions",
                "logs:DescribeLogGroups",
                "cloudwatch:DescribeAlarms",
                "secretsmanager:ListSecrets",
                "lambda:ListFunctions",
                "sts:GetCallerIdentity",
            ],
            ["*"],
        ),
    )
