"""Bodies of the admin routes (`/v1/admin/...`): key management."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas import MAX_NAME_CHARS, _Input


class ApiKeyCreate(_Input):
    """Body of `POST /v1/admin/keys`: a key for a user (created if needed)."""

    user: str = Field(min_length=1, max_length=MAX_NAME_CHARS, description="Owner's user name.")
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS, description="A label.")
    is_admin: bool = Field(default=False, description="May change what every user shares.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="The key stops working at this instant (timezone required)."
    )


class ApiKeyRotate(_Input):
    """Body of `POST /v1/admin/keys/{id}/rotate`."""

    expires_at: AwareDatetime | None = Field(
        default=None, description="Expiry of the new key (default: the old key's)."
    )


class ApiKeyOut(BaseModel):
    """A key as listed: its prefix, never the key."""

    id: UUID
    prefix: str
    user_id: UUID
    name: str | None
    is_admin: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new key: the only response that carries the key itself."""

    key: str = Field(description="The API key; shown only this once, never stored.")


class ApiKeyList(BaseModel):
    """Keys, oldest first."""

    items: list[ApiKeyOut]


class UserSpendLimitsIn(_Input):
    """Body of `PUT /v1/admin/users/{name}/limits`: null falls back to the server default."""

    daily_token_limit: int | None = Field(default=None, ge=1, le=2**62)
    daily_cost_limit_usd: float | None = Field(default=None, gt=0, le=1e9)
    max_running_tasks: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Tasks the user may have running at once; more wait `queued`.",
    )


class UserSpendLimitsOut(UserSpendLimitsIn):
    """A user's own daily limits."""

    user: str
