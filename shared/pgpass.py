"""Generated database passwords, kept in a PostgreSQL password file (``pgpass``
format, mode 0600) rather than in URLs, environments or logs.

A URL names its file with ``?passfile=PATH`` (libpq and asyncpg read it), so URLs
can be printed and passed around while the secrets stay in one file under ``var/``
(DESIGN.md §10: secrets may come from files, and are never printed).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

#: Passwords are for 127.0.0.1 only: the file belongs to one embedded server.
HOST = "127.0.0.1"


def passfile_of(url: str) -> Path | None:
    """The password file a URL names (``?passfile=``), if any."""
    found = parse_qs(urlsplit(url).query).get("passfile")
    return Path(found[0]) if found else None


def read(path: Path) -> dict[str, str]:
    """user -> password of the file's entries for :data:`HOST`."""
    entries = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    for line in lines:
        fields = line.split(":")
        if len(fields) == 5 and fields[0] == HOST and not line.startswith("#"):
            entries[fields[3]] = fields[4]
    return entries


def password_for(path: Path, user: str) -> str:
    """``user``'s password from ``path``; a new random one is generated and added
    when there is none (under a lock: several processes may ask at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, 0o600)
        known = read(path)
        if user in known:
            return known[user]
        # url-safe base64: no ':' or '\\', which the pgpass format would need escaped
        password = secrets.token_urlsafe(24)
        with open(path, "a") as out:
            out.write(f"{HOST}:*:*:{user}:{password}\n")
        return password
    finally:
        os.close(fd)  # releases the lock
