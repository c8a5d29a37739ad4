"""Two-locus haplotype frequencies and LD (r², D, D') exactly as plink 1.9 computes them.

plink 1.9 ``--clump`` and ``--r2 dprime`` do not use the genotype correlation. For a pair of
variants they build the 3×3 table of genotype counts over the founders called at both, then
estimate the four haplotype frequencies by maximum likelihood: every genotype except the
double heterozygote (AaBb) is phased unambiguously, and the share of AB/ab among the double
heterozygotes solves a cubic (Gaunt, Rodriguez & Day 2007, *BMC Bioinformatics* 8:428;
plink-ng 1.9 ``plink_ld.c: em_phase_hethet()``, roots from ``plink_common.c:
cubic_real_roots()``). From the frequencies

    D  = f11 − pA·pB,      r² = D² / (pA(1−pA)·pB(1−pB)),

with r² = 0 when |D| < 2⁻⁴⁴ or the denominator is below 2⁻⁴⁴, and no value at all (NaN here;
"never clumped" in plink) when either variant is monomorphic among the jointly called people.

Everything here is vectorised numpy over a batch of pairs: ``counts`` has shape ``[..., 3, 3]``
with rows = genotype of the first variant and columns = genotype of the second, each ordered
(homozygous allele-1, heterozygous, homozygous allele-2), allele 1 being the .bim A1 allele
(plink's order in ``clump_reports``: ``vec_datamask`` classes 0, 2, 3 of the index variant
against ``genovec_3freq`` of the window variant). The orientation only matters for plink's
root-selection quirk (see :func:`em_haplotype_frequencies`), which is reproduced.

numpy rather than JAX: the greedy clumping pass is sequential (each index SNP depends on the
clumps before it) and each batch is one index against its window, tens to a few thousand pairs
of varying length. Under jit every new window length would compile (or be padded to buckets),
and one compile costs more than the whole numpy clumping of the 50 scan traits (about a second,
``benchmarks/RESULTS_clump.md``); the per-window work is a few milliseconds in numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# plink_common.h: tolerances 2^-30, 2^-35, 2^-44 and the constant PI.
EPSILON = 2.0**-30
SMALLISH_EPSILON = 2.0**-35
SMALL_EPSILON = 2.0**-44
_PI = 3.1415926535897932


class PairLD(NamedTuple):
    """LD between pairs of variants (arrays of one shape; NaN where a variant is monomorphic).

    ``r2``: plink's EM r²; ``d``: signed D = f11 − pA·pB for allele 1 (A1) of both variants,
    so ``d > 0`` means the two A1 alleles travel together; ``dprime``: |D'| = |D|/Dmax;
    ``freq_a``, ``freq_b``: A1 frequencies among the jointly called people; ``n``: number of
    people called at both.
    """

    r2: np.ndarray
    d: np.ndarray
    dprime: np.ndarray
    freq_a: np.ndarray
    freq_b: np.ndarray
    n: np.ndarray


def cubic_real_roots(a, b, c):
    """Real roots of x³ + a x² + b x + c, sorted, with plink's epsilon merging of close roots.

    Vectorised transcription of plink 1.9 ``cubic_real_roots()`` (trigonometric solution for
    three real roots, Cardano otherwise; roots closer than 2⁻³⁰ are merged). Returns
    ``(roots [..., 3], count [...])``; entries at or beyond ``count`` are meaningless.
    """
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    with np.errstate(invalid="ignore", divide="ignore"):
        a2 = a * a
        qq = (a2 - 3 * b) * (1.0 / 9.0)
        rr = (2 * a2 * a - 9 * a * b + 27 * c) * (1.0 / 54.0)
        r2 = rr * rr
        q3 = qq * qq * qq
        adiv3 = a * (1.0 / 3.0)
        three = r2 < q3

        # Three real roots: trigonometric form, then sort and merge near-equal roots.
        sq = np.sqrt(qq)
        angle = np.arccos(rr / (qq * sq)) * (1.0 / 3.0)
        sq = sq * -2
        trig = np.stack(
            [
                sq * np.cos(angle) - adiv3,
                sq * np.cos(angle + (2.0 * _PI / 3.0)) - adiv3,
                sq * np.cos(angle - (2.0 * _PI / 3.0)) - adiv3,
            ],
            axis=-1,
        )
        trig = np.sort(trig, axis=-1)
        s0, s1, s2 = trig[..., 0], trig[..., 1], trig[..., 2]
        first_close = s1 - s0 < EPSILON
        trig_roots = np.where(first_close[..., None], np.stack([s0, s2, s2], axis=-1), trig)
        trig_count = np.where(first_close, np.where(s2 - s0 < EPSILON, 1, 2), np.where(s2 - s1 < EPSILON, 2, 3))

        # One (or a double plus a single) real root: Cardano.
        dxx = -np.power(np.abs(rr) + np.sqrt(r2 - q3), 1.0 / 3.0)
        zero = dxx == 0.0
        dxx = np.where(rr < 0.0, -dxx, dxx)
        sqc = qq / dxx
        root0 = dxx + sqc - adiv3
        single = np.abs(dxx - sqc) >= EPSILON * 8
        other = -dxx - adiv3
        card_roots = np.where(
            (dxx >= 0.0)[..., None],
            np.stack([other, root0, root0], axis=-1),
            np.stack([root0, other, other], axis=-1),
        )
        card_roots = np.where(single[..., None], np.stack([root0, root0, root0], axis=-1), card_roots)
        card_count = np.where(single, 1, 2)
        card_roots = np.where(zero[..., None], np.repeat((-adiv3)[..., None], 3, axis=-1), card_roots)
        card_count = np.where(zero, 1, card_count)

    roots = np.where(three[..., None], trig_roots, card_roots)
    count = np.where(three, trig_count, card_count)
    return roots, count


def _log_likelihood(known, center, f, half_share, incr):
    """plink ``calc_lnlike``: log-likelihood of the haplotype frequencies when ``incr`` of the
    double-heterozygote share is phased as 11/22. ``known``/``f``: ``[..., 4]`` (11, 12, 21, 22);
    ``center``/``half_share``: ``[...]``; ``incr``: ``[..., k]`` candidates (broadcast)."""
    c = center[..., None]
    h = half_share[..., None]
    f11 = f[..., 0:1] + incr
    f22 = f[..., 3:4] + incr
    f12 = f[..., 1:2] + h - incr
    f21 = f[..., 2:3] + h - incr
    with np.errstate(invalid="ignore", divide="ignore"):
        ll = c * np.log(f11 * f22 + f12 * f21)
        for k, fk in enumerate((f11, f12, f21, f22)):
            kk = known[..., k : k + 1]
            ll = ll + np.where(kk != 0.0, kk * np.log(fk), 0.0)
    return ll


def em_haplotype_frequencies(counts):
    """ML two-locus haplotype frequency f11 from 3×3 genotype tables (plink ``em_phase_hethet``).

    ``counts[..., i, j]``: people with genotype i at variant A and j at variant B (0 = two
    copies of allele 1, 1 = heterozygous, 2 = two copies of allele 2). The unambiguous
    haplotype counts are known11 = 2n00 + n01 + n10, known12 = 2n02 + n01 + n12,
    known21 = 2n20 + n10 + n21, known22 = 2n22 + n12 + n21; the n11 double heterozygotes
    contribute x to f11 and f22 and (h − x) to f12 and f21, h = n11 / (2N). The stationary
    points in x are the roots of

        x³ + ½(f11 + f22 − f12 − f21 − 3h) x² + ½(f11f22 + f12f21 + h(f12 + f21 − f11 − f22 + h)) x
           − ½ h f11 f22 = 0

    restricted to [0, h] (plink keeps roots within 2⁻³⁵ of the ends and clamps them; when
    none is left it tries both ends). When f11f22 = f12f21 = 0 the candidates are 0, the
    midpoint (h + f12 + f21 − f11 − f22)/2 when it is interior, and h (plink's 2017 fix).
    Quirk kept on purpose: with several candidates plink compares each with the *first*
    one's likelihood and keeps the last that beats it (it never updates the running best),
    which is not always the global maximum. Without double heterozygotes f11 is the known share.

    Returns ``(f11, p_a, p_b, ok)``: allele-1 frequencies of A and B, and ``ok`` False where
    plink reports the pair as monomorphic (no value).
    """
    n = np.asarray(counts, dtype=np.float64)
    known = np.stack(
        [
            2 * n[..., 0, 0] + n[..., 0, 1] + n[..., 1, 0],
            2 * n[..., 0, 2] + n[..., 0, 1] + n[..., 1, 2],
            2 * n[..., 2, 0] + n[..., 1, 0] + n[..., 2, 1],
            2 * n[..., 2, 2] + n[..., 1, 2] + n[..., 2, 1],
        ],
        axis=-1,
    )
    center = n[..., 1, 1]
    twice_tot = known.sum(axis=-1) + 2 * center
    with np.errstate(invalid="ignore", divide="ignore"):
        recip = 1.0 / twice_tot
        f = known * recip[..., None]
        half_share = center * recip
    f11, f12, f21, f22 = f[..., 0], f[..., 1], f[..., 2], f[..., 3]
    prod_1122 = f11 * f22
    prod_1221 = f12 * f21
    p_a = f11 + f12 + half_share
    p_b = f11 + f21 + half_share
    has_center = center > 0
    has_prod = (prod_1122 != 0.0) | (prod_1221 != 0.0)
    h = half_share[..., None]
    slot = np.arange(3)

    # Case "cubic" (some product nonzero): the sorted distinct real roots inside
    # [−eps, h + eps] form a contiguous run (plink trims from both ends), clamped into [0, h].
    roots, count = cubic_real_roots(
        0.5 * (f11 + f22 - f12 - f21 - 3 * half_share),
        0.5 * (prod_1122 + prod_1221 + half_share * (f12 + f21 - f11 - f22 + half_share)),
        -0.5 * half_share * prod_1122,
    )
    admissible = (slot < count[..., None]) & (roots <= h + SMALLISH_EPSILON) & (roots >= -SMALLISH_EPSILON)
    lost = ~admissible.any(axis=-1)  # a lost double root at a boundary: try both ends
    cand = np.where(lost[..., None], np.concatenate([np.zeros_like(h), h, h], axis=-1), np.clip(roots, 0.0, h))
    admissible = np.where(lost[..., None], slot < 2, admissible)

    # Case "no nonzero product": 0, the interior midpoint if any, and h.
    xx = (f11 + f22)[..., None]
    xy = (f12 + f21)[..., None]
    interior = (xx + SMALLISH_EPSILON < h + xy) & (xy + SMALLISH_EPSILON < h + xx)
    flat = np.concatenate([np.zeros_like(h), np.where(interior, (h + xy - xx) * 0.5, h), h], axis=-1)
    cand = np.where(has_prod[..., None], cand, flat)
    admissible = np.where(has_prod[..., None], admissible, (slot < 2) | interior)

    # Root selection with plink's quirk: compare against the first candidate only.
    ll = _log_likelihood(known, center, f, half_share, cand)
    first = np.argmax(admissible, axis=-1)
    first_ll = np.take_along_axis(ll, first[..., None], axis=-1)
    beats = admissible & (slot > first[..., None]) & (ll > first_ll)
    chosen = np.where(beats.any(axis=-1), 2 - np.argmax(beats[..., ::-1], axis=-1), first)
    best = np.take_along_axis(cand, chosen[..., None], axis=-1)[..., 0]

    freq11 = np.where(has_center, f11 + best, f11)
    ok = (twice_tot > 0) & (has_center | has_prod)
    return freq11, p_a, p_b, ok


def ld_from_counts(counts) -> PairLD:
    """r², signed D and |D'| from 3×3 genotype tables (see :func:`em_haplotype_frequencies`).

    r² = D²/(pA(1−pA)pB(1−pB)) as in plink 1.9 ``clump_reports``/``--r2 dprime``, set to 0
    when |D| < 2⁻⁴⁴ or the denominator < 2⁻⁴⁴; D' = D/Dmax with Dmax = min(pA(1−pB), (1−pA)pB)
    for D > 0 and min(pA·pB, (1−pA)(1−pB)) for D < 0 (Lewontin 1964). NaN where ``ok`` is False.
    """
    counts = np.asarray(counts, dtype=np.float64)
    freq11, p_a, p_b, ok = em_haplotype_frequencies(counts)
    expected = p_a * p_b
    d = freq11 - expected
    denom = expected * (1.0 - p_a) * (1.0 - p_b)
    tiny = (np.abs(d) < SMALL_EPSILON) | (np.abs(denom) < SMALL_EPSILON)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(tiny, 0.0, d * d / denom)
        dmax = np.where(d > 0, np.minimum(p_a * (1 - p_b), (1 - p_a) * p_b), np.minimum(p_a * p_b, (1 - p_a) * (1 - p_b)))
        dprime = np.where(tiny, 0.0, np.abs(d) / dmax)
    d = np.where(tiny, 0.0, d)
    nan = np.nan
    return PairLD(
        r2=np.where(ok, r2, nan),
        d=np.where(ok, d, nan),
        dprime=np.where(ok, dprime, nan),
        freq_a=np.where(ok, p_a, nan),
        freq_b=np.where(ok, p_b, nan),
        n=counts.sum(axis=(-2, -1)),
    )
