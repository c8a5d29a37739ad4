"""From GWAS files to harmonised instruments (host side: pandas/pyarrow).

``read_gwas`` (and one reader per format) -> ``select_instruments`` -> (``mrjax.clump``) ->
``filter_weak`` -> ``harmonise``; with ``audited=True`` each step returns ``Audited(table,
audit)`` and takes the previous step's ``Audited`` (see ``mrjax.audit``).
"""

from mrjax.gwas._audit import concat_tables, unlisted_of
from mrjax.gwas.formats import is_case_control
from mrjax.gwas.harmonise import NoUsableSNPError, harmonise
from mrjax.gwas.readers import read_finngen, read_gwas, read_gwas_catalog, read_parquet, read_plain, read_vcf
from mrjax.gwas.select import filter_weak, select_instruments
from mrjax.gwas.strength import Strength, strength_columns

__all__ = [
    "NoUsableSNPError",
    "Strength",
    "concat_tables",
    "filter_weak",
    "harmonise",
    "is_case_control",
    "read_finngen",
    "read_gwas",
    "read_gwas_catalog",
    "read_parquet",
    "read_plain",
    "read_vcf",
    "select_instruments",
    "strength_columns",
    "unlisted_of",
]
