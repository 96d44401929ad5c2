"""Compiling Jinja with a file name, so errors point at `file:line` rather than `<template>`."""

from __future__ import annotations

from types import TracebackType

from jinja2 import Environment, Template, TemplateSyntaxError, UndefinedError


def compile_template(env: Environment, source: str, filename: str) -> Template:
    """Like `env.from_string`, but with `filename` on the code so tracebacks name the file."""
    code = env.compile(source, name=filename, filename=filename)
    # A plain dict of globals (not Jinja's ChainMap): each render copies it, and a dict copies fastest.
    return env.template_class.from_code(env, code, dict(env.globals))


def error_line(exc: BaseException, filename: str) -> int | None:
    """The template line of the innermost traceback frame that belongs to `filename`."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        return f"missing variable: {exc.message}"
    if isinstance(exc, TemplateSyntaxError):
        return f"Jinja syntax error: {exc.message}"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail[:200]}"


__all__ = ["compile_template", "error_line", "describe", "TemplateSyntaxError", "UndefinedError"]
