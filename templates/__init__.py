"""What a message says: MJML email, SMS and push templates, compiled once and personalised per recipient."""

from templates.problems import Problem
from templates.rendered import Rendered, RenderedEmail, RenderedPush, RenderedSms

__all__ = ["Problem", "Rendered", "RenderedEmail", "RenderedPush", "RenderedSms"]
