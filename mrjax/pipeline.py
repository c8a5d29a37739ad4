"""Deprecated alias of :mod:`mrjax.scan` (kept for one release): ``from mrjax.pipeline import
run_scan, ScanConfig`` keeps working; new code imports from ``mrjax.scan``."""

from mrjax.scan import *  # noqa: F401,F403
from mrjax.scan import __all__  # noqa: F401
from mrjax.scan.assemble import assemble_tables  # noqa: F401
from mrjax.scan.run import run_scan  # noqa: F401
