"""Persisted results: where they are stored, and the record each one is stored as.

`result_storage` on a task or flow is a directory path, an fsspec URL
(`memory://results`, `s3://bucket/prefix`, ...) or a `ResultStorage` object;
by default results go to `$HEADWATER_HOME/results` (the setting
`local_storage_path` moves it). Local directories are written with plain file
I/O; fsspec is imported only when a URL storage is first used.

A record is one file named by its storage key (the cache key, or the rendered
`result_storage_key`): a first line `HWR1`, a line of JSON metadata
(serializer, storage key, expiration, created) and then the serialized value.

Example:
    from headwater.results import get_storage, read_record

    record = read_record(get_storage("/tmp/results"), "report-2024-01-01.pkl")
    print(record.metadata.created, record.value)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from headwater.exceptions import ResultStorageError, SerializationError
from headwater.serializers import Serializer, get_serializer

__all__ = [
    "LocalFileSystem",
    "RemoteFileSystem",
    "ResultMetadata",
    "ResultRecord",
    "ResultStorage",
    "get_storage",
    "read_record",
]

_MAGIC = b"HWR1\n"
_lock_files: dict[Path, int] = {}
_lock_files_guard = threading.Lock()


class ResultStorage:
    """Bytes stored under keys (relative paths). Subclasses implement the four methods."""

    #: distinguishes storages in the per-key thread locks
    identity: str = ""

    def read(self, key: str) -> bytes | None:
        """The bytes under `key`, or None when there are none."""
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, whole (readers never see half a record)."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """A lock on `key` across processes, where the storage supports one."""
        return contextlib.nullcontext()


def check_key(key: str) -> str:
    """A storage key must be a relative path that stays inside the storage."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts:
        raise ResultStorageError(
            f"Result storage key {key!r} must be a relative path without '..' "
            "(for example 'reports/{day}.pkl')."
        )
    return key


class LocalFileSystem(ResultStorage):
    """A local directory. Writes are atomic (a temporary file renamed into place)."""

    def __init__(self, basepath: str | Path) -> None:
        self.basepath = Path(basepath).expanduser()
        self.identity = f"file://{self.basepath}"
        self._directories: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.basepath / check_key(key)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            if path.parent not in self._directories:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._directories.add(path.parent)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            raise ResultStorageError(
                f"Cannot write result {key!r} to {self.basepath}: {exc}. Make the directory "
                "writable or choose another result_storage."
            ) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An exclusive POSIX record lock on one byte of `.headwater-locks` for `key`.

        One lock file per directory, opened once, instead of a file per key: a
        cache miss then costs no extra file creation. The byte is picked by a hash
        of the key; two keys sharing a byte only wait for each other.
        """
        handle = self._lock_handle()
        if handle is None:  # pragma: no cover - no fcntl (Windows): in-process locks only
            yield
            return
        import fcntl
        import zlib

        offset = zlib.crc32(key.encode())
        fcntl.lockf(handle, fcntl.LOCK_EX, 1, offset)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)

    def _lock_handle(self) -> int | None:
        # Kept open for the life of the process: closing any descriptor of the file
        # would drop every record lock this process holds on it.
        handle = _lock_files.get(self.basepath)
        if handle is None:
            try:
                import fcntl  # noqa: F401
            except ImportError:  # pragma: no cover
                return None
            with _lock_files_guard:
                handle = _lock_files.get(self.basepath)
                if handle is None:
                    self.basepath.mkdir(parents=True, exist_ok=True)
                    handle = os.open(self.basepath / ".headwater-locks", os.O_RDWR | os.O_CREAT)
                    _lock_files[self.basepath] = handle
        return handle

    def __repr__(self) -> str:
        return f"LocalFileSystem({str(self.basepath)!r})"


class RemoteFileSystem(ResultStorage):
    """Any fsspec URL: `memory://`, `s3://bucket/prefix`, `gcs://...`.

    Only threads of one process are kept from computing the same key together:
    fsspec has no portable lock, so processes on several machines may both
    compute a key; each record is written whole and the last write wins.
    """

    def __init__(self, basepath: str) -> None:
        self.basepath = basepath.rstrip("/")
        self.identity = self.basepath
        self._filesystem: Any = None

    @property
    def filesystem(self) -> Any:
        if self._filesystem is None:
            import fsspec.core  # type: ignore[import-untyped]

            try:
                self._filesystem, _ = fsspec.core.url_to_fs(self.basepath)
            except (ImportError, ValueError) as exc:
                raise ResultStorageError(
                    f"Cannot use result storage {self.basepath!r}: {exc}. Install the fsspec "
                    "implementation for this protocol (for s3://, `pip install s3fs`)."
                ) from exc
        return self._filesystem

    def _url(self, key: str) -> str:
        return f"{self.basepath}/{check_key(key)}"

    def read(self, key: str) -> bytes | None:
        try:
            data: bytes = self.filesystem.cat_file(self._url(key))
        except FileNotFoundError:
            return None
        return data

    def write(self, key: str, data: bytes) -> None:
        url = self._url(key)
        try:
            self.filesystem.makedirs(url.rsplit("/", 1)[0], exist_ok=True)
            self.filesystem.pipe_file(url, data)
        except OSError as exc:
            raise ResultStorageError(f"Cannot write result {key!r} to {url}: {exc}") from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.rm_file(self._url(key))

    def __getstate__(self) -> dict[str, Any]:
        return {"basepath": self.basepath, "identity": self.identity, "_filesystem": None}

    def __repr__(self) -> str:
        return f"RemoteFileSystem({self.basepath!r})"


def _default_storage_path() -> Path:
    from headwater.settings import get_settings

    settings = get_settings()
    return settings.local_storage_path or settings.home / "results"


def get_storage(spec: ResultStorage | str | Path | None = None) -> ResultStorage:
    """The storage for a `result_storage` value; None means the default directory."""
    if isinstance(spec, ResultStorage):
        return spec
    if spec is None:
        return LocalFileSystem(_default_storage_path())
    if isinstance(spec, Path):
        return LocalFileSystem(spec)
    if not isinstance(spec, str) or not spec:
        raise ResultStorageError(
            f"result_storage must be a directory, an fsspec URL or a ResultStorage, got {spec!r}."
        )
    if spec.startswith("file://"):
        return LocalFileSystem(spec.removeprefix("file://"))
    if "://" in spec:
        return RemoteFileSystem(spec)
    return LocalFileSystem(spec)


@dataclasses.dataclass(frozen=True, slots=True)
class ResultMetadata:
    """What a record says about its value."""

    storage_key: str
    serializer: str
    created: float
    #: epoch seconds after which the record is no longer a cache hit; None: never
    expiration: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return (
            self.expiration is not None and (time.time() if now is None else now) >= self.expiration
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ResultRecord:
    """A persisted result: metadata and the value."""

    metadata: ResultMetadata
    value: Any


def encode_record(metadata: ResultMetadata, payload: bytes) -> bytes:
    header = json.dumps(dataclasses.asdict(metadata), separators=(",", ":")).encode()
    return b"".join((_MAGIC, header, b"\n", payload))


def decode_metadata(data: bytes) -> tuple[ResultMetadata, bytes]:
    """The metadata of a stored record, and its payload."""
    if not data.startswith(_MAGIC):
        raise ResultStorageError("not a Headwater result record (no HWR1 header)")
    end = data.index(b"\n", len(_MAGIC))
    fields = json.loads(data[len(_MAGIC) : end])
    return ResultMetadata(**fields), data[end + 1 :]


def load_value(metadata: ResultMetadata, payload: bytes, fallback: Serializer | None = None) -> Any:
    """Deserialize a payload with the serializer that wrote it (or `fallback` for custom ones)."""
    try:
        serializer = get_serializer(metadata.serializer)
    except SerializationError:
        if fallback is None:
            raise
        serializer = fallback
    return serializer.loads(payload)


def read_record(
    storage: ResultStorage, key: str, serializer: Serializer | None = None
) -> ResultRecord | None:
    """The record stored under `key`, or None. Expired records are returned too."""
    data = storage.read(key)
    if data is None:
        return None
    metadata, payload = decode_metadata(data)
    return ResultRecord(metadata, load_value(metadata, payload, serializer))
