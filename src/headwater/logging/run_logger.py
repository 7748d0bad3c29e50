"""`get_run_logger()` and the handlers that send run logs to the console and the store."""

from __future__ import annotations

import builtins
import logging
import sys
import threading
import time
from typing import Any

from headwater.exceptions import MissingContextError

FLOW_RUNS = "headwater.flow_runs"
TASK_RUNS = "headwater.task_runs"


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose records carry the run's id and name."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def get_run_logger(**extra: Any) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for the current flow or task run.

    Example:
        @flow
        def etl():
            get_run_logger().info("Loaded %d rows", 42)
    """
    from headwater.context import flow_run_context, task_run_context

    setup_logging()
    task_context = task_run_context.get()
    if task_context is not None:
        return task_run_logger(task_context.task_run, **extra)
    flow_context = flow_run_context.get()
    if flow_context is not None:
        return flow_run_logger(flow_context.flow_run, **extra)
    raise MissingContextError(
        "There is no active flow or task run: get_run_logger() must be called inside a "
        "@flow or @task function (use logging.getLogger(__name__) elsewhere)."
    )


def task_run_logger(task_run: Any, **extra: Any) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for `task_run`, usable from engine code outside its context."""
    setup_logging()
    return RunLoggerAdapter(
        logging.getLogger(TASK_RUNS),
        {
            "flow_run_id": task_run.flow_run_hex,
            "task_run_id": task_run.hex_id,
            "run_label": f"Task run {task_run.name!r}",
            **extra,
        },
    )


def flow_run_logger(flow_run: Any, **extra: Any) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    setup_logging()
    return RunLoggerAdapter(
        logging.getLogger(FLOW_RUNS),
        {
            "flow_run_id": flow_run.hex_id,
            "task_run_id": None,
            "run_label": f"Flow run {flow_run.name!r}",
            **extra,
        },
    )


class StoreHandler(logging.Handler):
    """Queues records of runs to the recorder, to be written with the run's states."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        task_run_id = getattr(record, "task_run_id", None)
        if flow_run_id is None and task_run_id is None:
            return
        try:
            from headwater.core.ids import uuid7_hex
            from headwater.engine.recorder import get_recorder

            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            get_recorder().log(
                (
                    uuid7_hex(),
                    flow_run_id,
                    task_run_id,
                    record.levelno,
                    record.name,
                    message,
                    record.created,
                )
            )
        except Exception:
            self.handleError(record)


#: Texts of the secrets read in this process, longest first; masked in run log records.
_secret_texts: tuple[str, ...] = ()
_secrets_lock = threading.Lock()
#: Shorter secret strings are not masked: they would hide ordinary words and numbers.
MIN_MASKED_LENGTH = 4
MASK = "********"


def mask_secret(value: Any) -> None:
    """Mask `value` (a string, or every string in a JSON value) in this process's run logs."""
    global _secret_texts
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) >= MIN_MASKED_LENGTH:
                found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    with _secrets_lock:
        new = set(found) - set(_secret_texts)
        if new:
            _secret_texts = tuple(sorted({*_secret_texts, *new}, key=len, reverse=True))


def mask_secrets(text: str) -> str:
    """`text` with every secret read in this process replaced by ********."""
    for secret in _secret_texts:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class SecretMaskFilter(logging.Filter):
    """Replaces secret values in records by ********; a no-op until a secret is read."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secret_texts and not getattr(record, "_headwater_masked", False):
            _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    record.__dict__["_headwater_masked"] = True
    try:
        message = record.getMessage()
    except Exception:
        return  # the handler reports the broken format; nothing to mask yet
    masked = mask_secrets(message)
    if record.exc_info:
        trace = logging.Formatter().formatException(record.exc_info)
        masked_trace = mask_secrets(trace)
        if masked_trace != trace:  # fold the traceback into the message, masked
            masked = f"{masked}\n{masked_trace}"
            record.exc_info = None
            record.exc_text = None
    if masked != message or record.args:
        record.msg = masked
        record.args = None


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        label = getattr(record, "run_label", None)
        prefix = f"{label} - " if label else ""
        text = (
            f"{stamp}.{int(record.msecs):03d} | {record.levelname:<7} | {prefix}"
            f"{record.getMessage()}"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


_configured = False
_setup_lock = threading.Lock()


def setup_logging() -> None:
    """Attach the console and store handlers to the `headwater` logger, once per process."""
    global _configured
    if _configured:
        return
    with _setup_lock:
        if _configured:
            return
        from headwater.settings import get_settings

        settings = get_settings()
        root = logging.getLogger("headwater")
        root.setLevel(settings.logging_level)
        root.propagate = False
        masking = SecretMaskFilter()
        store = StoreHandler()
        store.addFilter(masking)
        root.addHandler(store)
        if settings.log_to_console:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(ConsoleFormatter())
            # Records made with extra={"console": False} go to the store only
            # (e.g. a wrapped command's output, which is already on the terminal).
            console.addFilter(lambda record: getattr(record, "console", True))
            console.addFilter(masking)
            root.addHandler(console)
        _configured = True


_original_print = builtins.print
_print_patched = False


def _print_to_log(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    from headwater.context import flow_run_context, task_run_context

    context: Any = task_run_context.get() or flow_run_context.get()
    if context is None or not context.log_prints or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    message = (sep if sep is not None else " ").join(str(a) for a in args)
    get_run_logger().info(message)


def enable_log_prints() -> None:
    """Route `print()` inside runs with `log_prints=True` to the run logger.

    `print` is replaced once per process by a function that checks the run
    context and falls through to the original everywhere else.
    """
    global _print_patched
    if not _print_patched:
        builtins.print = _print_to_log
        _print_patched = True
