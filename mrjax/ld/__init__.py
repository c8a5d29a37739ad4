"""LD against a local PLINK reference panel: plink 1.9-exact clumping and LD proxies.

``LDPanel.load(prefix)`` reads a .bed/.bim/.fam panel once (bed-reader, founders only);
``clump`` reproduces plink 1.9 ``--clump`` index SNPs with the EM haplotype r²;
``find_proxies`` / ``substitute_proxies`` replace instruments missing from an outcome by
their best LD proxy with alleles mapped through the haplotype phase.
"""

from mrjax.ld.clump import NoIndexSNPWarning, clump
from mrjax.ld.haplotype import PairLD, ld_from_counts
from mrjax.ld.panel import LDPanel
from mrjax.ld.proxies import find_proxies, map_proxy_alleles, substitute_proxies

__all__ = [
    "LDPanel",
    "NoIndexSNPWarning",
    "PairLD",
    "clump",
    "find_proxies",
    "ld_from_counts",
    "map_proxy_alleles",
    "substitute_proxies",
]
