"""The family: children recorded together (or joined later), the adults who care for them, and how
each adult is related to each child (Working Together 2023: a whole-family view).

Children join through a link table rather than a column on `child`: the child's record is the
national identity (another part of eCAF changes it), and a family row can be forgotten without
touching it. A child belongs to one family (a unique link), so "the family of this CAF" is one page.
Consent is never held here: it stays with each child's episode.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime
from .child import Child


class Family(Base):
    __tablename__ = "family"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The household's details as first recorded: what a sibling's new CAF is offered.
    family_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    postcode: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class FamilyChild(Base):
    """A child's place in a family: one family per child."""

    __tablename__ = "family_child"
    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), unique=True)
    child: Mapped[Child] = relationship()
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class FamilyAdult(Base):
    """A parent or carer in the family."""

    __tablename__ = "family_adult"
    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdultRelationship(Base):
    """How one adult is related to one child of the family, and whether they hold parental responsibility."""

    __tablename__ = "family_adult_child"
    __table_args__ = (UniqueConstraint("adult_id", "child_id", name="uq_family_adult_child"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    adult_id: Mapped[int] = mapped_column(ForeignKey("family_adult.id", ondelete="CASCADE"))
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    relationship_to_child: Mapped[str] = mapped_column(String(100))
    parental_responsibility: Mapped[bool] = mapped_column(default=False)
