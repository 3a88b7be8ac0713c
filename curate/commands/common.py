"""What every command shares: the one-line error, the error handler, the --taxonomy option, and flags derived
from a pydantic Options model (so YAML keys and CLI flags are one definition)."""
from __future__ import annotations

import functools
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, get_args, get_origin

import click
from pydantic import BaseModel, ValidationError

from curate.errors import EXIT_FAILED, EXIT_USAGE, CurateError


class UserError(click.ClickException):
    """A one-line error for the user: no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        from curate.store import redact_text

        super().__init__(redact_text(message))  # an error may quote a URL with credentials in it
        self.exit_code = code

    def show(self, file=None) -> None:
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


class LazyGroup(click.Group):
    """A command group whose listed commands are built on first use: building one may need a heavy import
    (a stage package, the classifier), and `curate --version` should pay for none of them."""

    def __init__(self, *args: Any, lazy: dict[str, Callable[[], click.Command]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self.lazy:
            command = self.lazy[name]()
            self.add_command(command, name)
        return command


def log(message: str) -> None:
    """Progress and stage messages on stderr, with credentials in URLs redacted."""
    from curate.store import redact_text

    click.echo(redact_text(message), err=True)


def handle_errors(fn: Callable) -> Callable:
    """curate's errors become one line and their exit code; a bug still shows its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CurateError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except OSError as exc:  # disk full, read-only folder, permission: say which path
            if os.environ.get("CURATE_DEBUG"):
                raise
            raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_FAILED) from None
    return wrapper


_TAXONOMY: dict[str, Any] = dict(type=click.Path(file_okay=False, exists=True, path_type=Path),
                                 help="Taxonomy folder (default: the one shipped with curate).")


def taxonomy_option(param: str = "taxonomy") -> click.Option:
    """The one --taxonomy option, for commands built from a parameter list."""
    return click.Option(["--taxonomy", param], **_TAXONOMY)


def with_taxonomy(param: str = "taxonomy") -> Callable:
    """The same --taxonomy option as a decorator, for hand-written commands."""
    return click.option("--taxonomy", param, **_TAXONOMY)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if get_origin(annotation) is typing.Annotated:
        return _unwrap_optional(get_args(annotation)[0])
    return annotation


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is structured) for one annotation; structured values are parsed as YAML/JSON text."""
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is Literal:
        return click.Choice([str(a) for a in get_args(annotation)]), False
    if annotation in (bool, int, float, str):
        return annotation, False
    if annotation is Path:
        return click.Path(path_type=Path), False
    return str, True


def _item_type(annotation: Any) -> tuple[Any, bool, bool]:
    """(click type, is structured, is a list) of a field."""
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) in (list, tuple, set):
        return (*_click_type((get_args(annotation) or (str,))[0]), True)
    return (*_click_type(annotation), False)


def options_from_model(model: type[BaseModel], skip: set[str] = frozenset(), *,
                       flags: dict[str, str] | None = None) -> list[click.Option]:
    """One click option per field of ``model`` (minus ``skip``); ``flags`` renames a field's flag."""
    params = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        flag = (flags or {}).get(name) or "--" + name.replace("_", "-")
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        shown = "" if default in (None, [], {}) or isinstance(default, BaseModel) else f" [default: {default}]"
        help_text = (field.description or "") + shown
        if _unwrap_optional(field.annotation) is bool:
            params.append(click.Option([f"{flag}/--no-{flag[2:]}", name], default=None, help=help_text))
            continue
        ctype, structured, many = _item_type(field.annotation)
        if many:
            params.append(click.Option([flag, name], multiple=True, type=ctype,
                                       help=help_text + (" (YAML/JSON)" if structured else " (repeatable)")))
        else:
            params.append(click.Option([flag, name], type=ctype, default=None,
                                       help=help_text + (" (YAML/JSON text)" if structured else "")))
    return params


def given_values(model: type[BaseModel], given: dict[str, Any]) -> dict[str, Any]:
    """The flags the user gave, as the model's field values (structured ones parsed as YAML/JSON)."""
    import yaml

    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or value == ():
            continue
        if _item_type(model.model_fields[name].annotation)[1]:
            value = [yaml.safe_load(v) for v in value] if isinstance(value, tuple) else yaml.safe_load(value)
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def parse_options(model: type[BaseModel], given: dict[str, Any], base_dir: Path) -> BaseModel:
    """The Options model from the given flags, or a one-line error naming the flag."""
    from curate.config import validation_message

    try:
        return model.model_validate(given_values(model, given), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise UserError(validation_message(exc, as_flag=True)) from None
