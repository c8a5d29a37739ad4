"""The two exceptions a scan raises on purpose."""

from __future__ import annotations


class ScanError(ValueError):
    """A user mistake in a scan's inputs or settings (the CLI prints it as one sentence).

    ``hint`` says what to do about it.
    """

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ScanInterrupted(RuntimeError):
    """Raised by the ``MRJAX_SCAN_STOP_AFTER`` hook once that many traits are checkpointed."""
