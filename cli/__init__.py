"""The ``mrjax`` command line (installed as the ``mrjax_cli`` package).

Thin by design: each command parses its options, calls the library and writes files.
No statistics live here.
"""
