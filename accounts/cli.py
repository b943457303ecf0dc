"""`python -m accounts`: manage the users who can sign in to the chat.

    python -m accounts add NAME [--admin]   # the password from stdin, or prompted
    python -m accounts passwd NAME
    python -m accounts list
    python -m accounts remove NAME          # with their documents and chats
    python -m accounts init                 # migrate; create a first admin if none

`init` and `secret` are what `scripts/run.sh` runs before starting the app.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from accounts.database import Database, UserExists
from accounts.names import InvalidName
from accounts.passwords import WeakPassword
from accounts.secret import auth_secret
from accounts.service import Accounts
from core.errors import ConfigError
from core.logs import configure_logging
from core.resources import opened
from core.settings import Settings, load_settings

EXIT_FAILED = 1
EXIT_CONFIG = 2


def read_password(confirm: bool = True) -> str:
    """The password: the first line of standard input when it is not a terminal (scripts,
    tests), else prompted twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m accounts", description=__doc__.split("\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user (password from stdin, or prompted)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage users and the library")
    commands.add_parser("passwd", help="change a user's password").add_argument("name")
    commands.add_parser("list", help="list users and their chats")
    remove = commands.add_parser("remove", help="remove a user with their documents and chats")
    remove.add_argument("name")
    commands.add_parser("init", help="migrate the database; create a first admin if none")
    commands.add_parser("secret", help="print the sign-in secret (created on first use)")
    return p


async def run(args: argparse.Namespace, settings: Settings) -> int:
    database = await Database.open(settings)
    accounts = Accounts(database)
    try:
        if args.command == "add":
            await accounts.add(args.name, read_password(), admin=args.admin)
            print(f"added {args.name}{' (admin)' if args.admin else ''}")
        elif args.command == "passwd":
            if not await accounts.change_password(args.name, read_password()):
                print(f"error: no user named {args.name!r}", file=sys.stderr)
                return EXIT_FAILED
            print(f"changed the password of {args.name}")
        elif args.command == "list":
            for account in await database.accounts():
                role = "admin" if account.admin else "user"
                print(f"{account.name}\t{role}\t{account.chats} chats\tsince {account.created_at}")
        elif args.command == "remove":
            async with opened(settings) as resources:
                if not await accounts.remove(args.name, resources.kb):
                    print(f"error: no user named {args.name!r}", file=sys.stderr)
                    return EXIT_FAILED
            print(f"removed {args.name} with their documents and chats")
        elif args.command == "init":
            created = await accounts.first_admin()
            if created is not None:
                name, password = created
                print(
                    f"\n  Created the first user. Sign in as {name!r} with the password:\n\n"
                    f"      {password}\n\n"
                    f"  Change it with: .venv/bin/python -m accounts passwd {name}\n"
                    f"  Add users with: .venv/bin/python -m accounts add NAME [--admin]\n"
                )
    finally:
        await database.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "secret":
        print(auth_secret(settings.auth_secret_file))
        return 0
    try:
        return asyncio.run(run(args, settings))
    except (UserExists, InvalidName, WeakPassword, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
