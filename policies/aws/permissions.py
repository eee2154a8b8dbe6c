"""What an IAM policy document effectively allows, judged the way IAM evaluates it.

IAM matches ``Action`` and ``Resource`` patterns case-insensitively for actions, with ``*`` and
``?`` wildcards (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html),
an explicit ``Deny`` wins over any ``Allow``, and ``NotAction``/``NotResource`` allow everything
except what they name. Rules ask what a document grants, not how it spells it: ``iam:Put*``
grants ``iam:PutRolePolicy`` as surely as naming it does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from policies.common import as_list, iter_statements

# Wildcards that only ever match read actions: a service's Describe/List/Get families.
_READ_ONLY_PATTERN = re.compile(r"^[a-z0-9-]+:(Describe|List|Get)[A-Za-z]*\*$", re.IGNORECASE)
# Action names that only read (``s3:GetObject`` reads data; see DATA_READS).
_READ_ACTION = re.compile(r"^[a-z0-9-]+:(Describe|List|Get|Head)[A-Za-z]*$", re.IGNORECASE)
# Reads that return secret or private data, however read-only their names sound.
DATA_READS: frozenset[str] = frozenset(
    {
        "secretsmanager:getsecretvalue",
        "ssm:getparameter",
        "ssm:getparameters",
        "ssm:getparametersbypath",
        "kms:decrypt",
        "s3:getobject",
        "lambda:getfunction",  # returns a presigned URL of the code bundle
    }
)


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if case_sensitive:
        return fnmatch.fnmatchcase(value, pattern)
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _statement_covers(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "NotAction" in statement:
        action_hit = not any(
            _matches(str(p), action, case_sensitive=False) for p in as_list(statement["NotAction"])
        )
    else:
        action_hit = any(
            _matches(str(p), action, case_sensitive=False)
            for p in as_list(statement.get("Action"))
        )
    if "NotResource" in statement:
        resource_hit = not any(
            _matches(str(p), resource, case_sensitive=True)
            for p in as_list(statement["NotResource"])
        )
    else:
        resource_hit = any(
            _matches(str(p), resource, case_sensitive=True)
            for p in as_list(statement.get("Resource"))
        )
    return action_hit and resource_hit


def allows(
    document: Mapping[str, Any] | None, action: str, resource: str, *, conditional: bool = True
) -> bool:
    """Whether the document allows ``action`` on ``resource``.

    Args:
        document: An IAM policy document.
        action: ``service:Action``.
        resource: The ARN acted on.
        conditional: Count ``Allow`` statements that carry a ``Condition`` (the worst case, for
            judging how much a document can grant); ``False`` counts only unconditional ones.

    Returns:
        True when some Allow covers it and no unconditional Deny does.
    """
    allowed = False
    for statement in iter_statements(document):
        if not _statement_covers(statement, action, resource):
            continue
        effect = statement.get("Effect", "Allow")
        if effect == "Deny" and "Condition" not in statement:
            return False
        if effect == "Allow" and (conditional or "Condition" not in statement):
            allowed = True
    return allowed


def is_read_only_pattern(pattern: str) -> bool:
    """Whether an action pattern matches only read actions (``ec2:Describe*``)."""
    if "*" in pattern or "?" in pattern:
        return bool(_READ_ONLY_PATTERN.match(pattern))
    return bool(_READ_ACTION.match(pattern)) and pattern.lower() not in DATA_READS


def broad_actions(statement: Mapping[str, Any]) -> list[str]:
    """The action patterns of an Allow statement that grant more than they name.

    A wildcard grants every action it matches, today's and future ones; only the read-only
    families (``Describe*``, ``List*``, ``Get*``) are exempt. ``NotAction`` grants everything
    it does not name.
    """
    if statement.get("Effect", "Allow") != "Allow":
        return []
    if "NotAction" in statement:
        return [f"NotAction {list(as_list(statement['NotAction']))}"]
    return [
        str(pattern)
        for pattern in as_list(statement.get("Action"))
        if ("*" in str(pattern) or "?" in str(pattern)) and not is_read_only_pattern(str(pattern))
    ]


def writes(statement: Mapping[str, Any]) -> list[str]:
    """The actions of an Allow statement that change something or read secret data."""
    if statement.get("Effect", "Allow") != "Allow":
        return []
    if "NotAction" in statement:
        return ["NotAction"]
    return [str(a) for a in as_list(statement.get("Action")) if not is_read_only_pattern(str(a))]
