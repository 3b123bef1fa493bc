"""`python -m devhost token --sub ID [--role admin] [--ttl SECONDS]`: print a bearer token."""

from __future__ import annotations

import argparse

from devhost.tokens import issue_token


def add_to(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print a bearer token signed with OUTERPARK_JWT_SECRET (or the development secret)",
    )
    parser.add_argument("--sub", required=True, help="the customer id (the token's subject)")
    parser.add_argument(
        "--role", action="append", default=[], help="an app role, e.g. admin (repeatable)"
    )
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (3600)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(issue_token(args.sub, args.role, args.ttl))
    return 0
