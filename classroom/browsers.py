"""A teacher's browser finds its class again after a reload: Streamlit starts a new session on a reload, and
the teacher key lived in the old one.

The browser's name (a secret only that browser and the server know: ui.server.browser_id) is never stored:
the row is found by one hash of it and holds the teacher key sealed with another, so the database alone
gives nobody the key, and only that browser unseals it.
"""
import hashlib

import sqlalchemy as sa

from .classes import teacher_class
from .db import classes, now, teacher_browsers
from .names import ClassroomError


def _digest(purpose: str, browser: str, size: int = 32) -> bytes:
    return hashlib.blake2b(browser.encode(), digest_size=size, person=purpose.encode()).digest()


def _seal(key: str, browser: str) -> str:
    raw = key.encode()
    if len(raw) > 64:
        raise ClassroomError("that is not a teacher key")
    pad = _digest("seal", browser, 64)
    return bytes(b ^ pad[i] for i, b in enumerate(raw)).hex()


def _unseal(sealed: str, browser: str) -> str:
    pad = _digest("seal", browser, 64)
    return bytes(b ^ pad[i] for i, b in enumerate(bytes.fromhex(sealed))).decode(errors="replace")


def remember_teacher(engine: sa.Engine, code, teacher_key, browser: str) -> None:
    """This browser teaches class `code` from now on (it taught at most one class)."""
    info = teacher_class(engine, code, teacher_key)
    lookup = _digest("lookup", browser).hex()
    with engine.begin() as conn:
        conn.execute(teacher_browsers.delete().where(teacher_browsers.c.lookup == lookup))
        conn.execute(teacher_browsers.insert().values(lookup=lookup, class_id=info.id,
                                                      sealed_key=_seal(teacher_key, browser), time=now()))


def forget_teacher(engine: sa.Engine, browser: str) -> None:
    with engine.begin() as conn:
        conn.execute(teacher_browsers.delete().where(teacher_browsers.c.lookup == _digest("lookup", browser).hex()))


def teacher_of(engine: sa.Engine, browser: str) -> tuple[str, str] | None:
    """(code, teacher key) of the class this browser teaches; None when it teaches none (or its key no
    longer opens the class)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(classes.c.code, teacher_browsers.c.sealed_key)
                           .join(classes, classes.c.id == teacher_browsers.c.class_id)
                           .where(teacher_browsers.c.lookup == _digest("lookup", browser).hex())).first()
    if row is None:
        return None
    key = _unseal(row.sealed_key, browser)
    try:
        teacher_class(engine, row.code, key)
    except ClassroomError:
        return None
    return row.code, key
