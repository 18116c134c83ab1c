"""A teacher's browser finds its class again after a reload; the database alone gives nobody the key."""
import pytest
import sqlalchemy as sa

import classroom as cr
from classroom import browsers
from classroom.db import teacher_browsers


def test_a_teacher_s_browser_finds_its_class_and_only_that_browser(tmp_path):
    engine = cr.open_database(f"sqlite:///{tmp_path / 'class.sqlite3'}")
    first, key = cr.create_class(engine)
    second, other_key = cr.create_class(engine)
    browser, stranger = "a1" * 16, "b2" * 16
    assert browsers.teacher_of(engine, browser) is None
    browsers.remember_teacher(engine, first.code, key, browser)
    assert browsers.teacher_of(engine, browser) == (first.code, key)
    assert browsers.teacher_of(engine, stranger) is None
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(teacher_browsers)).all()
    assert browser not in str(tuple(row)) and key not in str(tuple(row))  # neither the name nor the key
    browsers.remember_teacher(engine, second.code, other_key, browser)  # one class per browser: the newest
    assert browsers.teacher_of(engine, browser) == (second.code, other_key)
    browsers.forget_teacher(engine, browser)
    assert browsers.teacher_of(engine, browser) is None


def test_only_the_teacher_key_remembers_a_browser(tmp_path):
    engine = cr.open_database(f"sqlite:///{tmp_path / 'class.sqlite3'}")
    info, _ = cr.create_class(engine)
    with pytest.raises(cr.ClassroomError):
        browsers.remember_teacher(engine, info.code, "not the key", "c3" * 16)
    assert browsers.teacher_of(engine, "c3" * 16) is None
