from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from loanapi.users.models import Role, UserStatus

# Free text without control characters (PostgreSQL cannot even store a NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"

Username = Annotated[
    str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
]

Password = Annotated[str, Field(min_length=1, max_length=128)]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "alice",
                    "email": "alice@example.com",
                    "password": "correct-horse-battery",
                    "phone": "+44 20 7946 0000",
                }
            ]
        },
    )

    username: Username
    email: Annotated[EmailStr, StringConstraints(max_length=320)]
    # The configured minimum is checked by the service; 128 is the contract's maximum.
    password: Password
    phone: Annotated[str | None, Field(max_length=32, pattern=PLAIN_TEXT)] = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"current_password": "correct-horse-battery", "new_password": "staple-moon-42-lamp"}
            ]
        },
    )

    current_password: Password
    new_password: Password = Field(
        description="At least LOANAPI_PASSWORD_MIN_LENGTH (default 8) characters; not the "
        "username or e-mail address, not one of the 10,000 most common passwords"
    )


class UserRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "username": "carol",
                    "email": "carol@example.com",
                    "phone": "+44 20 7946 0000",
                    "role": "customer",
                    "status": "active",
                    "created_at": "2026-11-30T09:12:45.120000Z",
                }
            ]
        },
    )

    id: int
    username: str
    email: str
    phone: str | None
    role: Role
    status: UserStatus
    created_at: datetime


class Token(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3Iiwicm9sZSI6"
                    "ImN1c3RvbWVyIn0.4pA0Sx3n1bX1q0r5c1Q2lJmXgk6cG2YBl1rZQzq3Tfg",
                    "token_type": "bearer",
                    "expires_in": 3600,
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")


class PasswordReset(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user": UserRead.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                    "temporary_password": "q3TQ0t7bX1mV9kZ2pL8wRA",
                }
            ]
        }
    )

    user: UserRead
    temporary_password: str = Field(
        description="Shown once: give it to the user, who must choose a new password with it "
        "(POST /api/v1/auth/password) before anything else"
    )
