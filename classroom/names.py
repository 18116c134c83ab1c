"""What people type into a class: class codes and nicknames, checked and put in one canonical form.

A class code is CODE_LENGTH characters from an alphabet with no look-alikes (no 0/O, 1/I/L), so a code
read off a projector is typed right. There are 31**6 = 887,503,681 codes: with 100 classes open, one guess
finds a class with odds of about 1 in 8.9 million, and a wrong code shows only "no class has the code …".
A code lets a student join; only the teacher key (secrets.token_urlsafe, 128 bits) controls the class.
"""
import hashlib
import hmac
import secrets
import unicodedata


class ClassroomError(ValueError):
    """Something a teacher or student asked for that cannot be done, said in their words."""


CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
CODE_COUNT = len(CODE_ALPHABET) ** CODE_LENGTH
MAX_NICKNAME = 24  # characters: fits a board's column and a scatter's hover


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normal_code(text) -> str:
    """A code as typed (any case, spaces or dashes between groups) in its canonical form, or ClassroomError."""
    code = "".join(str(text).split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise ClassroomError(f"a class code is {CODE_LENGTH} letters and digits, like K7Q2XM")
    return code


def new_secret() -> str:
    return secrets.token_urlsafe(16)


def secret_hash(secret: str) -> str:
    # the secrets are 128 random bits: a plain SHA-256 cannot be reversed by guessing, no slow hash needed
    return hashlib.sha256(str(secret).encode()).hexdigest()


def secret_matches(secret, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def normal_nickname(text) -> str:
    """A nickname as shown: NFKC (full-width letters become ASCII), control and format characters (newlines,
    bidirectional overrides, zero-width joiners) dropped, runs of spaces one; ClassroomError when empty or
    longer than MAX_NICKNAME. It is still shown as plain text: this only keeps it one short line."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = " ".join(text.split())
    if not text:
        raise ClassroomError("type a nickname")
    if len(text) > MAX_NICKNAME:
        raise ClassroomError(f"a nickname is at most {MAX_NICKNAME} characters; this one has {len(text)}")
    return text


def nickname_key(nickname: str) -> str:
    """The form in which two nicknames are the same: 'Ada' and 'ADA' cannot both join one class."""
    return unicodedata.normalize("NFKC", nickname.casefold())
