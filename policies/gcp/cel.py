"""Reading the CEL conditions of IAM bindings and Workload Identity providers for what they
effectively admit, not for the words they contain.

Only the shapes the rules need are understood: top-level ``||`` and ``&&`` splits (quotes and
parentheses respected), tautologies (``true``, a literal compared to itself), and the clauses that
pin a claim or a resource name. A disjunction admits whatever its loosest branch admits, so
``assertion.repository == 'o/r' || true`` pins nothing.
"""

from __future__ import annotations

import re

_TAUTOLOGY = re.compile(
    r"""^\(*\s*(true|!\s*false|(?P<a>'[^']*'|"[^"]*"|\d+)\s*==\s*(?P=a))\s*\)*$""",
    re.IGNORECASE,
)
_REPOSITORY_PIN = re.compile(
    r"""(assertion|attribute)\.(repository|repository_id)\s*==\s*('[^']+'|"[^"]+")"""
)
_RESOURCE_NAME_PIN = re.compile(
    r"""^resource\.name\s*(==\s*|\.startsWith\(\s*)("projects/[^"/]+/[^"/]+/[^"]+"|'projects/[^'/]+/[^'/]+/[^']+')"""
)
_PROJECT_TYPE = re.compile(
    r"""^resource\.type\s*==\s*["']cloudresourcemanager\.googleapis\.com/Project["']$"""
)


def split_top(expression: str, operator: str) -> list[str]:
    """Split on ``operator`` (``||`` or ``&&``) outside quotes and parentheses."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    index = 0
    while index < len(expression):
        char = expression[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and expression.startswith(operator, index):
            parts.append(expression[start:index].strip())
            index += len(operator)
            start = index
            continue
        index += 1
    parts.append(expression[start:].strip())
    return parts


def _strip_parens(text: str) -> str:
    """Drop parentheses that enclose the whole text."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for index, char in enumerate(text):
            depth += (char == "(") - (char == ")")
            if depth == 0 and index < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def branches(expression: str) -> list[str]:
    """The top-level alternatives of a condition (one branch when there is no ``||``)."""
    found: list[str] = []
    for part in split_top(_strip_parens(expression), "||"):
        inner = _strip_parens(part)
        if len(split_top(inner, "||")) > 1:
            found.extend(branches(inner))
        else:
            found.append(inner)
    return found


def is_tautology(branch: str) -> bool:
    """Whether a branch is always true (``true``, ``'a' == 'a'``, an empty clause)."""
    text = _strip_parens(branch)
    return not text or bool(_TAUTOLOGY.match(text))


def admits_any_repository(expression: str) -> str | None:
    """Why a WIF attribute condition lets a token of another repository through, or ``None``.

    Every alternative must compare the repository claim for equality: the condition admits
    whatever its loosest branch admits.
    """
    if not expression.strip():
        return "the condition is empty"
    for branch in branches(expression):
        if is_tautology(branch):
            return f"the branch {branch!r} is always true"
        clauses = [_strip_parens(c) for c in split_top(branch, "&&")]
        if any(c.startswith("!") for c in clauses if _REPOSITORY_PIN.search(c)):
            return f"the branch {branch!r} negates the repository"
        if not any(_REPOSITORY_PIN.search(c) for c in clauses):
            return f"the branch {branch!r} does not pin assertion.repository"
    return None


def confines_to_resources(expression: str) -> str | None:
    """Why a project-level grant's condition does not confine it to named resources, or ``None``.

    Accepted branches: a ``resource.name`` equality or ``startsWith`` on a full
    ``projects/...`` name (optionally and-ed with more clauses), or the project itself (what the
    API checks on the project: creating and listing). At least one branch must name resources.
    """
    if not expression.strip():
        return "no condition: the role applies to every resource of the project"
    named = False
    for branch in branches(expression):
        if is_tautology(branch):
            return f"the branch {branch!r} is always true"
        clauses = [_strip_parens(c) for c in split_top(branch, "&&")]
        if any(_RESOURCE_NAME_PIN.match(c) for c in clauses):
            named = True
        elif not any(_PROJECT_TYPE.match(c) for c in clauses):
            return f"the branch {branch!r} does not confine resource.name"
    if not named:
        return "no branch confines resource.name to the deployment's resources"
    return None
