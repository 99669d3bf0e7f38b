"""Helpers shared by the command modules (`cli`, `cli_agent`): the service, output, errors."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, NoReturn

import click
from pydantic import BaseModel

from mcp_memory.config import Settings
from mcp_memory.errors import ConfigError, MemoryServiceError

EXIT_USAGE = 2
EXIT_ERROR = 1


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _service(ctx: click.Context) -> Any:
    from mcp_memory.service import MemoryService

    if "service" not in ctx.obj:
        ctx.obj["service"] = MemoryService(_settings(ctx))
    return ctx.obj["service"]


def _emit(ctx: click.Context, value: Any, human: Callable[[Any], None]) -> None:
    if ctx.obj["json"]:
        data = value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human(value)


def fail(exc: MemoryServiceError) -> NoReturn:
    """One line on stderr; exit 2 for a bad setting or flag, 1 for anything else."""
    click.echo(f"Error: {exc}", err=True)
    sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors become one line on stderr: ours with their fix (exit 1, or 2 for a setting), anything
    unexpected as a bug to report (exit 1; --log-level DEBUG shows the traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemoryServiceError as exc:
            fail(exc)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            logging.getLogger("mcp_memory.cli").debug("unexpected error", exc_info=True)
            click.echo(f"Error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                       "this is a bug: rerun with --log-level DEBUG for the traceback and report it", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (shown on a terminal only) fed with (done, total)."""
    with click.progressbar(length=1, label=label, file=sys.stderr, show_pos=True) as bar:
        def update(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        yield update
