"""Provider webhooks, unsubscribe and preference pages, events: the ASGI app behind `loyalflow serve`
(`channels.webhooks.app.create_app`)."""
