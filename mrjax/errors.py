"""Exceptions the data steps raise for outcomes a caller may want to treat as data.

Host-side only (no JAX): the readers, selection, clumping and harmonisation raise these, and a
scan catches them by class — never by matching message text.
"""

from __future__ import annotations


class NoInstrumentError(ValueError):
    """A data step left no instrument for any of its traits.

    ``table``, when the step has one, is the result it would have returned (empty, or with
    every row unusable) and ``audit`` (a :class:`mrjax.audit.Audit`) the records of why each
    SNP was lost, so a caller that goes on (a scan) can still report them.
    """

    def __init__(self, message: str, table=None, audit=None):
        super().__init__(message)
        self.table = table
        self.audit = audit
