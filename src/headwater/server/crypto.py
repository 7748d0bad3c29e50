"""The key that encrypts secrets at rest, and encryption with it.

The key never lives in the database. It is, in order of precedence:

- `HEADWATER_SECRET_KEY`: a Fernet key (32 url-safe base64-encoded bytes), or
- a key file, `HEADWATER_SECRET_KEY_FILE` or `$HEADWATER_HOME/secret.key`, created
  with mode 0600 the first time a secret is written; a key file that group or
  others may read is refused.

Each secret is stored as a Fernet token (AES-128-CBC + HMAC-SHA256) of the JSON
`{"name": ..., "value": ...}`, next to the `key_id` (a fingerprint) of the key
that made it. The name inside the token binds it to its row: a token copied onto
another secret's row does not decrypt as that secret.

`cryptography` is imported on first use of a key, never with this module.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    from headwater.settings import Settings

__all__ = [
    "KEY_ENV",
    "SecretKey",
    "SecretKeyError",
    "generate_key",
    "key_file_path",
    "load_key",
    "parse_key",
    "read_key_file",
    "write_key_file",
]

KEY_ENV = "HEADWATER_SECRET_KEY"
KEY_FILE_ENV = "HEADWATER_SECRET_KEY_FILE"


class SecretKeyError(ConfigurationError):
    """The secret key is missing, malformed, too exposed, or not the one a secret needs."""


@dataclasses.dataclass(frozen=True)
class SecretKey:
    """A Fernet key, its fingerprint, and where it came from (for messages)."""

    key: bytes = dataclasses.field(repr=False)
    key_id: str
    source: str

    def encrypt(self, name: str, value: Any) -> str:
        """The token that stores `value` as the secret `name`."""
        from cryptography.fernet import Fernet

        plain = json.dumps({"name": name, "value": value}, separators=(",", ":"))
        return Fernet(self.key).encrypt(plain.encode()).decode("ascii")

    def decrypt(self, name: str, token: str, key_id: str) -> Any:
        """The value of the secret `name` stored as `token` by the key `key_id`.

        Raises:
            SecretKeyError: this key did not encrypt it; the message names the
                secret and both keys' ids.
        """
        from cryptography.fernet import Fernet, InvalidToken

        if key_id != self.key_id:
            raise SecretKeyError(
                f"Secret {name!r} was encrypted with key {key_id}, but the key in use "
                f"({self.source}) is {self.key_id}. Configure the key {key_id} "
                "(HEADWATER_SECRET_KEY or the key file), or set the secret again."
            )
        try:
            document = json.loads(Fernet(self.key).decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeError):
            raise SecretKeyError(
                f"Secret {name!r} cannot be decrypted with key {self.key_id} ({self.source}): "
                "its stored ciphertext is damaged or was not written by Headwater. Set the "
                "secret again."
            ) from None
        if not isinstance(document, dict) or document.get("name") != name:
            raise SecretKeyError(
                f"The stored ciphertext of secret {name!r} belongs to another secret; set "
                f"{name!r} again."
            )
        return document.get("value")


def fingerprint(key: bytes) -> str:
    """A key's public id: 16 hex digits of a SHA-256 over the raw key."""
    return hashlib.sha256(b"headwater-secret-key\x00" + key).hexdigest()[:16]


def parse_key(text: str | bytes, source: str) -> SecretKey:
    """A `SecretKey` from its text (a Fernet key); SecretKeyError naming `source` if malformed."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode("ascii", "replace")
    try:
        decoded = base64.urlsafe_b64decode(raw)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 32:
        raise SecretKeyError(
            f"The secret key from {source} is not a Fernet key (32 bytes, url-safe base64, 44 "
            "characters). Make one with `headwater secret generate-key`."
        )
    return SecretKey(key=raw, key_id=fingerprint(raw), source=source)


def generate_key() -> bytes:
    """A new random Fernet key."""
    return base64.urlsafe_b64encode(os.urandom(32))


def key_file_path(settings: Settings) -> Path:
    """Where the key file of `settings` is (whether it exists or not)."""
    return settings.secret_key_file or settings.home / "secret.key"


def read_key_file(path: Path) -> SecretKey:
    """The key in `path`, refused if group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretKeyError(
            f"The secret key file {path} does not exist; set HEADWATER_SECRET_KEY, or "
            "HEADWATER_SECRET_KEY_FILE to the key file's path."
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            f"The secret key file {path} is open to group or others (mode "
            f"{stat.S_IMODE(mode):04o}); only its owner may read it: run `chmod 600 {path}`."
        )
    return parse_key(path.read_bytes(), f"key file {path}")


def write_key_file(path: Path, key: bytes) -> None:
    """Write `key` to `path` with mode 0600, atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, key + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _create_key_file(path: Path) -> SecretKey:
    """Create the key file with a new key; if another process won the race, read theirs.

    The key is written to a temporary file first and then linked into place, so
    nobody ever reads a key file that is not yet complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(descriptor, key + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.link(temporary, path)
    except FileExistsError:
        return read_key_file(path)
    finally:
        temporary.unlink(missing_ok=True)
    return parse_key(key, f"key file {path}")


def load_key(settings: Settings, *, create: bool = False) -> SecretKey:
    """The key of `settings`: HEADWATER_SECRET_KEY, else the key file.

    Args:
        create: make the key file (mode 0600, a new random key) if it does not exist.

    Raises:
        SecretKeyError: no key (and not `create`), a malformed key, or a key
            file readable by group or others.
    """
    if settings.secret_key:
        return parse_key(settings.secret_key, KEY_ENV)
    path = key_file_path(settings)
    if create and not path.exists():
        return _create_key_file(path)
    return read_key_file(path)
