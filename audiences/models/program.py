"""Program updates: news the program team publishes, the source of staff bulletins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base, UTCDateTime


class ProgramUpdate(Base):
    __tablename__ = "program_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    roles: Mapped[str | None] = mapped_column(String(200))
    """Comma-separated staff roles it is for; None means every role."""
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    """None means every store."""
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
