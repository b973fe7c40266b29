"""Who makes a change: the actor every service is given and every audit record names."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class ActorType(models.TextChoices):
    API_KEY = "api_key", "API key"
    STAFF = "staff", "Staff user"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "System"


@dataclass(frozen=True)
class Actor:
    """Who made a change, and under which request."""

    type: str
    id: str = ""
    request_id: str = ""

    @classmethod
    def api_key(cls, key_id: str, request_id: str = "") -> Actor:
        return cls(ActorType.API_KEY, key_id, request_id)

    @classmethod
    def staff(cls, username: str, request_id: str = "") -> Actor:
        return cls(ActorType.STAFF, username, request_id)

    @classmethod
    def command(cls, name: str) -> Actor:
        return cls(ActorType.COMMAND, name)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM, "system")
