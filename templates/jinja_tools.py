"""Compiling Jinja with a file name, so errors point at `file:line` rather than `<template>`, and
refusing at compile time what the sandbox would refuse at render time: an attribute or key that
starts with `_` (the way out of every Jinja sandbox escape), so `loyalflow check` names the line
even for a branch the sample data never takes."""

from __future__ import annotations

from types import TracebackType

from jinja2 import Environment, Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError


def compile_template(env: Environment, source: str, filename: str) -> Template:
    """Like `env.from_string`, but with `filename` on the code so tracebacks name the file."""
    tree = env.parse(source, name=filename, filename=filename)
    refuse_private_names(tree, filename)
    code = env.compile(tree, name=filename, filename=filename)
    # A plain dict of globals (not Jinja's ChainMap): each render copies it, and a dict copies fastest.
    return env.template_class.from_code(env, code, dict(env.globals))


def refuse_private_names(tree: nodes.Template, filename: str) -> None:
    """TemplateSyntaxError at the first `x._name`, `x['_name']` or `x|attr('_name')`: Python internals,
    never template data."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = getattr(node.arg, "value", None)
        else:  # `x|attr('_name')`
            name = getattr(node.args[0], "value", None) if node.name == "attr" and node.args else None
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateSyntaxError(f"access to {name!r} is not allowed in a template (unsafe)",
                                      node.lineno, filename, filename)


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
    if isinstance(exc, SecurityError):
        return f"unsafe template: {exc}"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail[:200]}"


__all__ = ["compile_template", "error_line", "describe", "TemplateSyntaxError", "UndefinedError"]
