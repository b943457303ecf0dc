"""The admin view in the chat: `/users` lists users with their chats and documents,
`/deluser NAME` removes a user with their documents and chats. Only for admins (checked
in the database on every call, not from the browser or the sign-in token)."""

from __future__ import annotations

import re

from chainlit.types import CommandDict

from accounts.service import Accounts
from core.knowledge import KnowledgeBase

ADMIN_COMMANDS: list[CommandDict] = [
    {
        "id": "users",
        "description": "Admin: list users with their chats and documents",
        "icon": "users",
        "button": False,
        "persistent": False,
        "selected": False,
    },
    {
        "id": "deluser",
        "description": "Admin: remove a user with their documents and chats: /deluser NAME",
        "icon": "user-x",
        "button": False,
        "persistent": False,
        "selected": False,
    },
]
_TEXT_COMMAND = re.compile(r"^/(users|deluser)(?:\s+(\S+))?\s*$")


def parse_admin_command(command: str | None, content: str) -> tuple[str, str] | None:
    if command in ("users", "deluser"):
        return command, content.strip()
    match = _TEXT_COMMAND.match(content.strip())
    return None if match is None else (match.group(1), match.group(2) or "")


async def run_admin_command(
    accounts: Accounts, kb: KnowledgeBase, name: str, argument: str, *, caller: str
) -> str:
    if not await accounts.is_admin(caller):
        return "Only an admin can manage users."
    if name == "users":
        rows = ["| User | Role | Chats | Documents | Chunks |", "|---|---|---:|---:|---:|"]
        for user in await accounts.overview(kb):
            role = "admin" if user.account.admin else "user"
            rows.append(
                f"| `{user.account.name}` | {role} | {user.account.chats} "
                f"| {user.documents} | {user.chunks} |"
            )
        return "\n".join(rows)
    if not argument:
        return "Say which user to remove: `/deluser NAME`."
    if argument == caller:
        return "You cannot remove yourself."
    if not await accounts.remove(argument, kb):
        return f"No user named `{argument}`."
    return f"Removed `{argument}` with their documents and chats."
