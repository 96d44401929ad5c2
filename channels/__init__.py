"""How a message leaves, and whether it may.

- `channels.gate.evaluate` decides per chunk: Send, Skip(reason) or Defer(until), from consent and
  suppression records (`channels.consent`), the pure rules in `policy`, `contacts`, `frequency`
  and `quiet_hours`.
- `channels.adapters` send: outbox (default), SendGrid, Twilio, FCM, behind one `Adapter` protocol.
- `channels.feedback` and `channels.webhooks` turn what providers tell us into suppressions,
  consent changes and delivery events; `channels.unsubscribe` signs the links members click.
"""
