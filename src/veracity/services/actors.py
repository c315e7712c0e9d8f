"""Who is acting: the authenticated user as services see it, and role rules."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROJECT_ROLES", "ROLES", "Actor"]

# Global roles, most powerful first. Project roles are the same names minus admin.
ROLES = ("admin", "manager", "reviewer", "annotator", "viewer")
PROJECT_ROLES = ("manager", "reviewer", "annotator", "viewer")


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a service: a user id, name, global role and clearance level."""

    user_id: int
    name: str
    role: str
    clearance: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
