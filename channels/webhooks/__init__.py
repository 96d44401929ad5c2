"""Provider webhooks, unsubscribe and preference pages: the ASGI app behind `loyalflow serve`."""

from channels.webhooks.app import create_app

__all__ = ["create_app"]
