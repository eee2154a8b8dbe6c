"""IAM condition expressions that confine a project-level grant to one deployment's resources.

Some Google APIs check ``create`` and ``list`` on the project, so a grant that lets CI create a
deployment's Cloud Run service or secrets must sit on the project; its condition then confines
every other permission of the role to resources whose ``resource.name`` starts with the
deployment's prefix (https://cloud.google.com/iam/docs/conditions-resource-attributes). The
policy pack reads these back (``policies.gcp.cel``) and refuses an admin role on the project
without such a condition, or with one that is always true.
"""

from __future__ import annotations

from collections.abc import Sequence

PROJECT_TYPE = "cloudresourcemanager.googleapis.com/Project"


def _quoted(text: str) -> str:
    if '"' in text or "\\" in text:
        raise ValueError(f"unexpected character in a resource name prefix: {text!r}")
    return f'"{text}"'


def names_starting_with(prefixes: Sequence[str], *, on_project: bool = True) -> str:
    """A CEL condition: the project itself (creates, lists) or resources named with a prefix.

    Args:
        prefixes: Full resource-name prefixes (``projects/P/locations/R/services/syncbot-prod``).
        on_project: Also allow what the API checks on the project (creating those resources).

    Returns:
        The expression.

    Raises:
        ValueError: If no prefix is given (the grant would not be confined at all).
    """
    if not prefixes:
        raise ValueError("a confined grant needs at least one resource name prefix")
    clauses = [f"resource.name.startsWith({_quoted(prefix)})" for prefix in prefixes]
    if on_project:
        clauses.insert(0, f"resource.type == {_quoted(PROJECT_TYPE)}")
    return " || ".join(clauses)
