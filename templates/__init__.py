"""What a message says: MJML email, SMS and push templates, compiled once and personalised per recipient.

    lib = TemplateLibrary.load()                       # compiles every template, fails fast on a bad one
    lib.render("points_expiring", "email_7d", "fr-CA", context)   # -> RenderedEmail
    check_templates(lib)                               # -> list[Problem], each with file:line
"""

from templates.errors import PushPayloadTooLarge, SegmentBudgetExceeded, TemplateError, TemplateNotFound
from templates.problems import Problem
from templates.rendered import Rendered, RenderedEmail, RenderedPush, RenderedSms

__all__ = [
    "Problem",
    "PushPayloadTooLarge",
    "Rendered",
    "RenderedEmail",
    "RenderedPush",
    "RenderedSms",
    "SegmentBudgetExceeded",
    "TemplateError",
    "TemplateLibrary",
    "TemplateNotFound",
    "check_templates",
]


def __getattr__(name: str):  # lazy: channels imports the Rendered* types without loading MJML and Babel
    if name == "TemplateLibrary":
        from templates.library import TemplateLibrary

        return TemplateLibrary
    if name == "check_templates":
        from templates.checks import check_templates

        return check_templates
    raise AttributeError(f"module 'templates' has no attribute {name!r}")
