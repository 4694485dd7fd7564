"""What the applications' typed configs and command lines share.

An application's config is a frozen dataclass whose fields are made with :func:`config_field`
(a default, the help text of its CLI flag, and optionally the allowed values) and which inherits
:class:`ConfigMixin` (building from a dict or a JSON file, copies with changes, unknown keys
rejected, types and choices checked). Its CLI adds one ``--flag`` per field with
:func:`config_flags` and turns the errors a user can fix into a one-line message and exit
status 1 with :func:`user_errors`. Error messages start with the config class's name.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class DemoConfig(ConfigMixin):
...     units: int = config_field(8, "Units of the layer.")
...     def __post_init__(self) -> None:
...         self.check_fields()
>>> DemoConfig.from_dict({"units": 16}).units
16
>>> DemoConfig.from_dict({"unit": 16})
Traceback (most recent call last):
...
ValueError: DemoConfig: unknown key 'unit'; known keys: units
>>> DemoConfig(units="8")
Traceback (most recent call last):
...
TypeError: DemoConfig: units must be int, got '8'
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

import typer
from rich.console import Console

__all__ = [
    "ConfigMixin",
    "check_type",
    "config_field",
    "config_flags",
    "fail",
    "field_help",
    "given_flags",
    "user_errors",
]

USER_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError, TypeError)


# -- configs ---------------------------------------------------------------------------------


def config_field(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with the help text of its CLI flag and, optionally, its allowed values.

    Args:
        default: the field's default value.
        help: the help text of the field's ``--flag``.
        choices: the values the field may take (``None``: any value of its type).
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


class ConfigMixin:
    """Building, copying and checking for a frozen config dataclass.

    Messages name the concrete class (``SentimentConfig: unknown key 'epoch'; known keys: ...``).
    The dataclass's ``__post_init__`` calls :meth:`check_fields`, then checks ranges.
    """

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of the config's fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """A config from a dict of field values; unknown keys raise ``ValueError``."""
        return cls().replace(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> Self:
        """A config from a JSON object of field values (``--config FILE``)."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{cls.__name__}: {path} is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{cls.__name__}: {path} must hold a JSON object of field values")
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed; unknown keys raise ``ValueError``."""
        known = self.field_names()
        for key in changes:
            if key not in known:
                raise ValueError(
                    f"{type(self).__name__}: unknown key {key!r}; "
                    f"known keys: {', '.join(sorted(known))}"
                )
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """The field values as a dict (JSON-ready for the configs' field types)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def check_fields(self) -> None:
        """Checks every field's value against its annotation (:func:`check_type`) and its
        ``choices``; raises ``TypeError`` or ``ValueError`` naming the class and the field."""
        owner = type(self).__name__
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            check_type(owner, f.name, value, hints[f.name])
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{owner}: {f.name} must be a finite number, got {value!r}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(
                    f"{owner}: {f.name} must be one of {', '.join(choices)}, got {value!r}"
                )


def check_type(owner: str, name: str, value: Any, hint: Any) -> None:
    """Checks a field's value against its annotation (int, float, str, bool, or ``X | None``).

    ``bool`` is not taken for ``int`` or ``float``; an ``int`` is taken for ``float``.

    Args:
        owner: the config class's name, which starts the message.
        name: the field's name.
        value: the value to check.
        hint: the field's resolved annotation.

    Raises:
        TypeError: ``"{owner}: {name} must be {type}, got {value!r}"``.
    """
    allowed = typing.get_args(hint) or (hint,)
    if value is None:
        if type(None) in allowed:
            return
    elif isinstance(value, bool):
        if bool in allowed:
            return
    elif isinstance(value, int) and (int in allowed or float in allowed):
        return
    elif isinstance(value, float) and float in allowed:
        return
    elif isinstance(value, str) and str in allowed:
        return
    expected = " or ".join("None" if a is type(None) else a.__name__ for a in allowed)
    raise TypeError(f"{owner}: {name} must be {expected}, got {value!r}")


def field_help(cls: type, name: str) -> str:
    """The help text of the field ``name`` of ``cls`` (its CLI flag's help), with its choices."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    choices = f.metadata.get("choices")
    text = f.metadata["help"]
    return f"{text} One of: {', '.join(choices)}." if choices else text


# -- command lines ---------------------------------------------------------------------------


def fail(message: str) -> typing.NoReturn:
    """Prints ``Error: message`` on stderr and ends the command with exit status 1."""
    Console(stderr=True, highlight=False).print(f"[red]Error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


def user_errors(
    func: Callable[..., Any] | None = None, *, also: tuple[type[Exception], ...] = ()
) -> Any:
    """Turns the errors a user can fix into a one-line message and exit status 1 (:func:`fail`).

    Those are ``FileNotFoundError``, ``ValueError`` and ``TypeError``, and the exception types
    in ``also``. Use as ``@user_errors`` or ``@user_errors(also=(RuntimeError,))``.
    """
    caught = USER_ERRORS + also

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except typer.Exit:
                raise  # a RuntimeError, but the command's own exit status, not an error
            except caught as e:
                fail(str(e))

        return wrapper

    return decorate if func is None else decorate(func)


def config_flags(
    config_cls: type,
    help_of: Callable[[str], str] | None = None,
    fields: Iterable[str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that adds one ``--flag`` per field of ``config_cls`` to a command's signature.

    ``max_tokens`` becomes ``--max-tokens`` (a bool field ``--mask-zero/--no-mask-zero``), with
    the field's default and help text; the command receives the values as keyword arguments
    (``**flags``), and :func:`given_flags` tells which were given on the command line.

    Args:
        config_cls: the config dataclass.
        help_of: the help text of a field by name (default: :func:`field_help` of the class).
        fields: the fields to add (default: all).
    """
    hints = typing.get_type_hints(config_cls)
    wanted = None if fields is None else set(fields)
    help_text = help_of or functools.partial(field_help, config_cls)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        for f in dataclasses.fields(config_cls):
            if wanted is not None and f.name not in wanted:
                continue
            flag = "--" + f.name.replace("_", "-")
            decls = [f"{flag}/--no-{f.name.replace('_', '-')}"] if hints[f.name] is bool else [flag]
            option = typer.Option(f.default, *decls, help=help_text(f.name), show_default=True)
            params.append(
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=hints[f.name]
                )
            )
        func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return func

    return decorate


def given_flags(ctx: typer.Context, flags: dict[str, Any]) -> dict[str, Any]:
    """The flags of ``flags`` given on the command line (not left at their defaults).

    Compared by name: typer carries its own copy of click, whose ``ParameterSource`` is not
    ``click.core.ParameterSource``.
    """
    given = {}
    for name, value in flags.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given[name] = value
    return given
