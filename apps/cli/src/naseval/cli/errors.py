"""Exceptions to one-line messages: exit code 2 for bad input, 1 for failures, no traceback.

Set NASEVAL_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

USAGE_EXIT = 2  # bad input: unknown policy, space 0, malformed architecture, unknown key ...
FAILURE_EXIT = 1  # the input was fine, but jobs failed or something broke


class UsageError(ValueError):
    """The user asked for something that cannot be done as asked; the message says what to do."""


class JobsFailed(RuntimeError):
    """Some jobs of a run failed; what is missing has been printed."""


def _usage_types() -> tuple[type[BaseException], ...]:
    from naseval.cli.executors import ExecutorUnavailable
    from naseval.cli.settings import SettingError
    from naseval.cli.tracking import TrackingUnavailable
    from naseval.space import InvalidArchitecture

    types: list[type[BaseException]] = [UsageError, SettingError, InvalidArchitecture,
                                        TrackingUnavailable, ExecutorUnavailable, FileNotFoundError]
    try:
        from naseval.trainer import DataError

        types.append(DataError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def first_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Run a command body; turn what it raises into `error: ...` and an exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        raise fail("interrupted; re-run the same command to continue where it stopped", 130) from None
    except JobsFailed as error:
        raise fail(first_line(error), FAILURE_EXIT) from None
    except Exception as error:
        if os.environ.get("NASEVAL_DEBUG"):
            raise
        if isinstance(error, _usage_types()):
            raise fail(first_line(error), USAGE_EXIT) from None
        raise fail(f"{type(error).__name__}: {first_line(error)} "
                   "(set NASEVAL_DEBUG=1 for the traceback)", FAILURE_EXIT) from None
