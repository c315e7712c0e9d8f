"""Use cases and transaction boundaries: the only layer that combines storage with the engines.

Services take a :class:`~veracity.storage.Database`, an :class:`Actor` and plain values, decide
every permission rule, and return plain dataclasses (never ORM objects).
"""

from veracity.services.actors import ROLES, Actor

__all__ = ["ROLES", "Actor"]
