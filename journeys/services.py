"""What the engine needs from the layers below, as one value: render, gate, deliver, feedback.

Tests and simulation swap parts (a recording adapter, a frozen template library) without
touching the engine; `default_services()` wires the real ones from settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from audiences.settings import ProgramSettings, program_context
from channels.adapters.base import Adapter, DeliveryResult, OutgoingMessage
from channels.gate import Candidate, Verdict
from templates.rendered import Rendered


class Renderer(Protocol):
    def render(self, journey: str, step: str, locale: str, context: dict[str, Any]) -> Rendered: ...


Gate = Callable[[Session, datetime, Sequence[Candidate]], list[Verdict]]
Feedback = Callable[[Session, datetime, str, Sequence[OutgoingMessage], Sequence[DeliveryResult]], None]
Links = Callable[[str, int, str, str], dict[str, str]]


def no_feedback(session: Session, now: datetime, provider: str, messages: Sequence[OutgoingMessage],
                results: Sequence[DeliveryResult]) -> None:
    return None


def plain_links(base_url: str = "http://127.0.0.1:8000") -> Links:
    def links(kind: str, recipient_id: int, channel: str, purpose: str) -> dict[str, str]:
        return {"unsubscribe_url": f"{base_url}/unsubscribe", "preferences_url": f"{base_url}/preferences",
                "app_url": "loyalflow://home"}
    return links


@dataclass
class Services:
    renderer: Renderer
    adapters: Mapping[str, Adapter]
    gate: Gate
    links: Links = field(default_factory=plain_links)
    feedback: Feedback = no_feedback
    program: dict[str, Any] = field(default_factory=program_context)
    """The `program` of every render context: identity from ProgramSettings (LOYALFLOW_PROGRAM_NAME, ...)."""
    frequency_window: timedelta = timedelta(days=7)
    max_attempts: int = 5
    retry_backoff: timedelta = timedelta(minutes=15)
    default_time_zone: str | None = None
    """LOYALFLOW_DEFAULT_TIME_ZONE: for recipients with no usable zone of their own or of their store."""


def default_services(adapters: Mapping[str, Adapter] | None = None,
                     program: ProgramSettings | None = None) -> Services:
    """Real templates, the real gate and the adapters the channel settings choose (outbox by default);
    the program identity from `program` or the environment."""
    from channels import gate as gate_module
    from channels.adapters import adapters_for
    from channels.feedback import apply_delivery_results
    from channels.settings import channel_settings
    from templates import TemplateLibrary

    settings = channel_settings()
    identity = program or ProgramSettings()
    renderer = TemplateLibrary.load()
    renderer.default_locale = identity.default_locale

    def gate(session: Session, now: datetime, candidates: Sequence[Candidate]) -> list[Verdict]:
        return gate_module.evaluate(session, now, candidates, settings)

    def feedback(session: Session, now: datetime, provider: str, messages: Sequence[OutgoingMessage],
                 results: Sequence[DeliveryResult]) -> None:
        apply_delivery_results(session, provider, messages, results, now)

    return Services(
        renderer=renderer,
        adapters=adapters if adapters is not None else adapters_for(settings),
        gate=gate,
        links=_links_from(settings),
        feedback=feedback,
        frequency_window=timedelta(days=settings.frequency_window_days),
        default_time_zone=settings.default_time_zone or identity.default_time_zone,
        program=program_context(identity),
    )


def _links_from(settings: Any) -> Links:
    """Signed unsubscribe and preference links. Sending through providers needs
    LOYALFLOW_UNSUBSCRIBE_SECRET (links must keep working after a restart); the outbox, made to be
    looked at, signs with a secret of this process when none is set."""
    import secrets

    from pydantic import SecretStr

    from channels.settings import DeliveryMode
    from channels.unsubscribe import signed_links

    if settings.unsubscribe_secret is None:
        if settings.delivery_mode is not DeliveryMode.outbox:
            settings.require("unsubscribe_secret")
        settings = settings.model_copy(update={"unsubscribe_secret": SecretStr(secrets.token_hex(32))})
    return signed_links(settings)


def services_for(adapter: Adapter, program: ProgramSettings | None = None) -> Services:
    """The real renderer and gate with every channel delivering to one `adapter` (tests, simulations,
    dry runs: e.g. `services_for(MemoryAdapter())`)."""
    from templates.vocabulary import CHANNELS

    return default_services(adapters={channel: adapter for channel in CHANNELS}, program=program)
