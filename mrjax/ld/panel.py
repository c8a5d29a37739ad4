"""A PLINK 1 binary reference panel (.bed/.bim/.fam) held in memory for LD look-ups.

The genotypes are read once with the maintained ``bed-reader`` package (hard calls, A1 allele
counts, missing calls kept as missing), restricted to founders as plink 1.9 does for LD, and
stored variant-major as int8 so that one variant's calls are a contiguous row. Variants are
addressed by their row in the .bim file ("panel order", which is also plink's tie-breaker).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from bed_reader import open_bed

from mrjax.ld.haplotype import PairLD, ld_from_counts

MISSING = -127  # bed-reader's int8 missing value

_COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


def _prefix_of(path) -> Path:
    path = Path(path)
    if path.suffix in {".bed", ".bim", ".fam"}:
        path = path.with_suffix("")
    return path


def clump_radius_bp(kb: float) -> int:
    """plink 1.9's clump window: variants at most ``int(kb·1000·(1+2⁻⁴⁴) − 1)`` bp apart join,
    i.e. strictly closer than ``kb`` kilobases (plink_ld.c ``clump_reports``)."""
    return int(kb * 1000 * (1 + 2.0**-44) - 1)


@dataclass(eq=False, repr=False)
class LDPanel:
    """An in-memory PLINK reference panel (founders only).

    Attributes: ``prefix``; per variant (panel order) ``snp``, ``chrom`` (labels as strings),
    ``pos`` (bp), ``a1``, ``a2`` (.bim alleles 1 and 2); ``genotypes`` int8
    ``[variants, founders]`` holding the number of A1 alleles (0, 1, 2) or −127 for a missing
    call; ``planes`` the same calls bit-packed per genotype class (:func:`genotype_planes`);
    ``people`` the founder IIDs.
    """

    prefix: Path
    snp: np.ndarray
    chrom: np.ndarray
    pos: np.ndarray
    a1: np.ndarray
    a2: np.ndarray
    genotypes: np.ndarray
    people: np.ndarray
    _lookup: pd.Index = field(repr=False, default=None)

    @classmethod
    def load(cls, prefix) -> "LDPanel":
        """Read ``prefix.bed/.bim/.fam`` (``prefix`` may also name any of the three files).

        Founders are the people whose father and mother are both 0 in the .fam (plink's
        definition). Raises ``ValueError`` naming the file when one is missing or unreadable.
        If an rsID occurs twice in the .bim, look-ups use its first row (with a warning).
        """
        prefix = _prefix_of(prefix)
        for ext in (".bed", ".bim", ".fam"):
            if not prefix.with_suffix(ext).is_file():
                raise ValueError(f"LD panel: file {prefix.with_suffix(ext)} not found (expected {prefix}.bed/.bim/.fam)")
        try:
            bed = open_bed(prefix.with_suffix(".bed"), count_A1=True)
            founders = np.flatnonzero((np.asarray(bed.father) == "0") & (np.asarray(bed.mother) == "0"))
            if len(founders) == 0:
                raise ValueError(f"LD panel {prefix}.fam: no founders (every person has a parent listed)")
            everyone = len(founders) == len(bed.iid)
            # Fortran order: the transpose below is then a C-contiguous [variants, people] view.
            calls = bed.read(index=None if everyone else np.s_[founders, :], dtype="int8", order="F")
            panel = cls(
                prefix=prefix,
                snp=np.asarray(bed.sid, dtype=object),
                chrom=np.asarray(bed.chromosome, dtype=object),
                pos=np.asarray(bed.bp_position, dtype=np.int64),
                a1=np.asarray(bed.allele_1, dtype=object),
                a2=np.asarray(bed.allele_2, dtype=object),
                genotypes=np.ascontiguousarray(calls.T),  # a view when calls is F-ordered
                people=np.asarray(bed.iid, dtype=object)[founders],
            )
        except ValueError:
            raise
        except Exception as err:  # bed-reader raises its own types for corrupt files
            raise ValueError(f"LD panel {prefix}: could not read .bed/.bim/.fam ({type(err).__name__}: {err})") from err
        return panel

    def __post_init__(self):
        lookup = pd.Index(self.snp)
        if not lookup.is_unique:
            dup = lookup[lookup.duplicated()].unique()
            warnings.warn(
                f"LD panel {self.prefix}: {len(dup)} rsID(s) occur more than once in the .bim "
                f"(e.g. {', '.join(map(str, dup[:5]))}); look-ups use the first row",
                stacklevel=3,
            )
            keep = ~lookup.duplicated()
            self._first_rows = np.flatnonzero(keep)
            lookup = lookup[keep]
        else:
            self._first_rows = None
        self._lookup = lookup
        self._planes = None

    @property
    def planes(self) -> np.ndarray:
        """All calls bit-packed per genotype class (computed on first use, then cached)."""
        if self._planes is None:
            self._planes = genotype_planes(self.genotypes)
        return self._planes

    def planes_of(self, rows) -> np.ndarray:
        """Bit-packed genotype classes ``[len(rows), 3, words]`` of the variants ``rows``."""
        rows = np.asarray(rows)
        if self._planes is not None:
            return self._planes[rows]
        return genotype_planes(self.genotypes[rows])

    def __len__(self) -> int:
        return len(self.snp)

    def __repr__(self) -> str:
        return f"LDPanel({str(self.prefix)!r}: {len(self):,} variants, {self.n_people:,} founders)"

    @property
    def n_people(self) -> int:
        return self.genotypes.shape[1]

    def locate(self, snps) -> np.ndarray:
        """Panel rows of the rsIDs ``snps`` (−1 for IDs absent from the panel)."""
        rows = self._lookup.get_indexer(pd.Index(np.asarray(snps, dtype=object)))
        if self._first_rows is not None:
            rows = np.where(rows >= 0, self._first_rows[np.maximum(rows, 0)], -1)
        return rows

    def variants(self, rows=None) -> pd.DataFrame:
        """The .bim view: ``SNP, chr, pos, a1, a2`` for ``rows`` (all when None)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        return pd.DataFrame(
            {"SNP": self.snp[rows], "chr": self.chrom[rows], "pos": self.pos[rows], "a1": self.a1[rows], "a2": self.a2[rows]}
        )

    def allele1_frequency(self, rows) -> np.ndarray:
        """A1 frequency of each variant among its called founders."""
        g = self.genotypes[np.asarray(rows)]
        called = g != MISSING
        return np.where(called, g, 0).sum(axis=-1) / (2.0 * called.sum(axis=-1))

    def genotype_tables(self, row: int, others) -> np.ndarray:
        """3×3 genotype tables of variant ``row`` against each of ``others`` (``[len(others), 3, 3]``).

        Entry [k, i, j] counts founders called at both with genotype i at ``row`` and j at
        ``others[k]`` (0 = A1/A1, 1 = A1/A2, 2 = A2/A2), the layout plink 1.9 builds for
        ``--clump``: popcounts of the bit-packed genotype classes (:attr:`planes`).
        """
        return tables_from_planes(self.planes_of(row), self.planes_of(others))

    def ld(self, row: int, others) -> PairLD:
        """plink 1.9 EM LD (r², signed D, |D'|) of variant ``row`` with each of ``others``."""
        return ld_from_counts(self.genotype_tables(row, others))

    def r2(self, row: int, others) -> np.ndarray:
        """plink 1.9 ``--clump`` r² of variant ``row`` with each of ``others`` (NaN: monomorphic)."""
        return self.ld(row, others).r2


def genotype_planes(genotypes: np.ndarray) -> np.ndarray:
    """Bit-packed genotype classes: uint64 ``[..., 3, words]``, bit k of plane c set when person
    k has genotype class c (0 = A1/A1, 1 = A1/A2, 2 = A2/A2); a missing call sets no bit.

    plink 1.9 keeps genotypes packed the same way and counts two-locus tables with popcounts.
    """
    g = np.asarray(genotypes)
    packed = np.packbits(np.stack([g == 2, g == 1, g == 0], axis=-2), axis=-1)
    pad = (-packed.shape[-1]) % 8
    if pad:
        packed = np.pad(packed, [(0, 0)] * (packed.ndim - 1) + [(0, pad)])
    return np.ascontiguousarray(packed).view(np.uint64)


def tables_from_planes(index_planes: np.ndarray, other_planes: np.ndarray) -> np.ndarray:
    """3×3 genotype tables ``[m, 3, 3]`` of one variant (planes ``[3, words]``) against many
    (``[m, 3, words]``): counts[k, i, j] = popcount(index class i AND other_k class j), so
    people missing at either variant drop out."""
    both = other_planes[:, None, :, :] & index_planes[None, :, None, :]
    return np.bitwise_count(both).sum(axis=-1, dtype=np.int64).astype(np.float64)


def genotype_tables(index_calls: np.ndarray, other_calls: np.ndarray) -> np.ndarray:
    """3×3 genotype tables of one variant (calls ``[people]``) against many (``[m, people]``)."""
    return tables_from_planes(genotype_planes(index_calls), genotype_planes(other_calls))


def complement(allele: str) -> str | None:
    """Watson–Crick complement of a single-base allele (None for anything else)."""
    return _COMPLEMENT.get(str(allele).upper())
