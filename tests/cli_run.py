"""Run a syncbot command in the test process, as its console script would run it.

A fresh interpreter per command costs seconds of imports on a loaded machine, and the tests
that run many commands only ask what the command does: it gets exactly the environment given
(nothing of the test process's), its output and exit code come back as a
:class:`subprocess.CompletedProcess`, and the logging it configures is given back afterwards.
``syncbot serve`` and the cold start of ``python -m app.cli`` keep their own processes
(tests/test_cli.py, tests/test_admin_cli.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from unittest import mock


def run_cli(
    main: Callable[[Sequence[str]], int], env: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``main(args)`` with exactly ``env`` as the environment; its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, dict(env), clear=True),
        _logging_restored(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exc:  # how a command ends early, as the script would exit
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """A command configures logging for its process; the test process gets its own back."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    loggers = {name: logging.getLogger(name) for name in names}
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in loggers.items()}
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            lg = loggers[name]
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
