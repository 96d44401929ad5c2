"""Program staff, the recipients of internal bulletins."""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from audiences.models.base import Base


class StaffRole(str, enum.Enum):
    associate = "associate"
    store_manager = "store_manager"
    regional_manager = "regional_manager"
    program_manager = "program_manager"


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(Enum(StaffRole, native_enum=False, length=32))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    """None for head-office staff."""
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
