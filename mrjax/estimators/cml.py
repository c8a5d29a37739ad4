"""Constrained maximum likelihood with model averaging (MendelianRandomization 0.10.0
``mr_cML``, Xue, Shen and Pan 2021): cML-MA-BIC, with and without data perturbation (DP).

For each number ``K = 0 .. n-2`` of invalid instruments, R's ``cML_estimate`` runs (from
``theta = 0``, ``mu = 0``; at most ``maxit = 100`` sweeps, until ``|theta_old - theta| <= 1e-7``):
the K SNPs with the largest ``(by - theta mu)^2 / sy^2`` get a free pleiotropic effect
``r_j = by_j - theta mu_j`` (0 for the others); ``mu = (bx/sx^2 + theta (by - r)/sy^2) /
(1/sx^2 + theta^2/sy^2)``; ``theta = sum((by - r) mu / sy^2) / sum(mu^2 / sy^2)``; a last step sets
``mu_j = bx_j`` and ``r_j = by_j - theta bx_j`` for the invalid SNPs. ``l_K`` is the negative
log-likelihood ``sum((bx - mu)^2 / 2sx^2) + sum((by - theta mu - r)^2 / 2sy^2)``, the SE R's
``cML_SdTheta`` (NaN when its variance is not positive). BIC weights ``exp(-BIC_K/2)``,
``BIC_K = log(n) K + 2 l_K``; ``theta = sum w_K theta_K``, ``se = sum w_K sqrt(se_K^2 +
(theta_K - theta)^2)`` (NaN terms dropped, as R's ``na.rm``). With DP, the same is done on
``num_pert = 200`` perturbed data sets (``bx + sx Z``, ``by + sy Z'``) and the K-wise means of
theta and l and the SD of theta across perturbations replace them; GOF1/GOF2 compare the SE at
the BIC-best K with the perturbation SD. ``n`` is the GWAS sample size (R's ``n``).

Differs from R:

* the DP draws come from the trait's key (per instrument slot, so padding never changes them),
  not R's ``random_seed = 314``; R's ``set.seed(314)`` stream is not reproduced, so DP results
  agree with R within their Monte-Carlo error only;
* with DP, each fit is taken to its fixed point (``profiled``, :func:`pooled_fits`) instead of
  R's stopping rule. R stops once a sweep moves ``theta`` by at most ``1e-7``; with many
  invalid SNPs its sweeps are so damped that this is far short of the fixed point (ldl_chd,
  K >= 20: most fits 1e-5 to 1e-2 away), and run on to ``1e-14`` R's sweeps reach the
  profiled fit (97-99% of fits within 1e-6; ~1% reach another local optimum, either way).
  The estimate moves by ~2% of its Monte-Carlo error at most; the fits take ~3.4 sweeps
  instead of ~21.
  ``profiled=False`` iterates as R. Without DP the fits are R's, exactly.

Scheduling (:func:`pooled_fits`): the (K, data set) fits run as a work pool, so a trait costs
the mean number of sweeps of its fits rather than the largest; the engine runs
:func:`mr_cml_batch`, whose DP fits of every trait of a bucket share one pool (the same fits).

"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params, Reason, estimate
from mrjax.estimators.draws import slot_normals
from mrjax.stats import norm_pval

MAXIT = 100
TOL = 1e-7
NUM_PERT = 200
MIN_SNPS = 3
ALPHA = 0.05  # mr_cML's default: 95% normal CI
# pooled_fits settings: fits run side by side per trait, the sweeps of a turn, profile steps
DP_POOL = dict(slots=64, schedule="RC", profile_steps=3)
DP_R_POOL = dict(slots=64, schedule="RCCC", profile_steps=0)  # DP with profiled=False
NODP_POOL = dict(slots=4, schedule="RCRC", profile_steps=0)
NODP_BATCH_SLOTS = 2  # the same without DP (1-8 measured: 2 best)
DP_BATCH_SLOTS = 24  # slots per trait of the pool across a batch's traits (mr_cml_batch; 16-32 measure alike)


class KFit(NamedTuple):
    theta: jax.Array
    se: jax.Array
    negl: jax.Array


class CMLFit(NamedTuple):
    """cML-MA-BIC(-DP) ``b``, ``se``, normal ``lo``/``up``/``pval``; ``gof1``/``gof2``
    (goodness-of-fit p-values, DP only; NaN otherwise); ``ok``."""

    b: jax.Array
    se: jax.Array
    lo: jax.Array
    up: jax.Array
    pval: jax.Array
    gof1: jax.Array
    gof2: jax.Array
    ok: jax.Array


def _importance(theta, mu, by, wy, mask):
    """``(by - theta mu)^2 / sy^2``, ``-inf`` off the mask: R ranks the SNPs by it."""
    return jnp.where(mask, (by - theta * mu) ** 2 * wy, -jnp.inf)


def _ranks(imp):
    """Each SNP's 0-based rank by decreasing ``imp``, ties broken by position as R's ``order()``
    (by counting: faster than a sort on CPU)."""
    idx = jnp.arange(imp.shape[-1])
    above = (imp[None, :] > imp[:, None]) | ((imp[None, :] == imp[:, None]) & (idx[None, :] < idx[:, None]))
    return jnp.sum(above, axis=1)


def _invalid(theta, mu, by, wy, mask, k):
    """The ``k`` SNPs with the largest ``(by - theta mu)^2 / sy^2``."""
    return mask & (_ranks(_importance(theta, mu, by, wy, mask)) < k)


def _still_top(imp, bad, mask):
    """Whether R's ranking by ``imp`` would pick ``bad`` again: its weakest SNP comes before the
    strongest other one, by value and then position. O(width), where ranking is O(width^2)."""
    idx = jnp.arange(imp.shape[-1])
    good = mask & ~bad
    lo = jnp.min(jnp.where(bad, imp, jnp.inf))
    hi = jnp.max(jnp.where(good, imp, -jnp.inf))
    last_lo = jnp.max(jnp.where(bad & (imp == lo), idx, -1))
    first_hi = jnp.min(jnp.where(good & (imp == hi), idx, imp.shape[-1]))
    return (lo > hi) | ((lo == hi) & (last_lo < first_hi))


def _sweep_given(theta, mu, bx, by, wx, wy, mask, bad):
    """R's sweep with its invalid set ``bad`` already chosen."""
    r = jnp.where(bad, by - theta * mu, 0.0)
    mu = (bx * wx + theta * (by - r) * wy) / (wx + theta * theta * wy)
    new = jnp.sum(jnp.where(mask, (by - r) * mu * wy, 0.0)) / jnp.sum(jnp.where(mask, mu * mu * wy, 0.0))
    return new, mu, r


def _sweep(theta, mu, bx, by, wx, wy, mask, k):
    """One sweep of R's ``cML_estimate``: new ``(theta, mu, r)`` from ``theta``, ``mu``."""
    return _sweep_given(theta, mu, bx, by, wx, wy, mask, _invalid(theta, mu, by, wy, mask, k))


def _profile(theta, bx, by, wx, wy, valid, steps: int):
    """``theta`` moved towards the fixed point of R's sweeps for a held invalid set, and ``mu``
    there: ``steps`` iterations of ``theta <- sum(by mu / sy^2) / sum(mu^2 / sy^2)`` over the
    ``valid`` SNPs, ``mu = (bx/sx^2 + theta by/sy^2) / (1/sx^2 + theta^2/sy^2)`` (``bx`` on the
    invalid SNPs, its limit in R's sweeps). R's sweeps go to the same point, damped: its invalid
    SNPs pull ``theta`` back towards its last value, so a fit with many invalid SNPs takes ~50
    sweeps where this takes a few."""
    def valid_mu(th):
        return (bx * wx + th * by * wy) / (wx + th * th * wy)

    def step(_, th):
        mu = valid_mu(th)
        return jnp.sum(jnp.where(valid, by * mu * wy, 0.0)) / jnp.sum(jnp.where(valid, mu * mu * wy, 0.0))

    theta = jax.lax.fori_loop(0, steps, step, theta, unroll=True)
    return theta, jnp.where(valid, valid_mu(theta), bx)


def _going(theta, old, it):
    return (jnp.abs(old - theta) > TOL) & (it < MAXIT)


def _finish(theta, mu, r, bx, by, wx, wy, mask) -> KFit:
    """R's last step (``mu_j = bx_j``, ``r_j = by_j - theta bx_j`` for the invalid SNPs), the
    negative log-likelihood and ``cML_SdTheta``."""
    bad = mask & (r != 0)
    mu = jnp.where(bad, bx, mu)
    r = jnp.where(bad, by - theta * mu, r)
    negl = jnp.sum(jnp.where(mask, (bx - mu) ** 2 * wx / 2.0 + (by - theta * mu - r) ** 2 * wy / 2.0, 0.0))
    good = mask & (r == 0)
    info = jnp.sum(jnp.where(good, mu * mu * wy - (2.0 * mu * theta - by) ** 2 * wy * wy / (wx + theta * theta * wy), 0.0))
    se = jnp.where(info > 0, jnp.sqrt(1.0 / jnp.where(info > 0, info, 1.0)), jnp.nan)
    return KFit(theta=theta, se=se, negl=negl)


def cml_estimate(bx, by, sx, sy, mask, k) -> KFit:
    """R's ``cML_estimate`` + ``cML_SdTheta`` for ``k`` invalid SNPs (``k`` may be traced)."""
    wx, wy = 1.0 / (sx * sx), 1.0 / (sy * sy)

    def sweep(state):
        theta, _, mu, _, it = state
        new, mu, r = _sweep(theta, mu, bx, by, wx, wy, mask, k)
        return new, theta, mu, r, it + 1

    zero = jnp.zeros_like(bx)
    theta, _, mu, r, _ = jax.lax.while_loop(lambda s: _going(s[0], s[1], s[4]), sweep,
                                            (jnp.zeros((), bx.dtype), -jnp.ones((), bx.dtype), zero, zero, 0))
    return _finish(theta, mu, r, bx, by, wx, wy, mask)


def pooled_fits(bxp, byp, sx, sy, mask, ks, k_ok, slots: int = 64, schedule: str = "RCCC",
                profile_steps: int = 0) -> KFit:
    """``cml_estimate`` of every (K, data set) for the K of ``ks`` where ``k_ok``: ``bxp``/``byp``
    are ``[P, width]`` data sets sharing ``sx``, ``sy``, ``mask``; fields ``[len(ks), P]`` (NaN
    where not ``k_ok``).

    Scheduled as a work pool: ``slots`` fits run side by side, and a fit that has converged
    hands its slot to the next pending one (largest K first, the slowest to converge). Run side
    by side in one ``while_loop`` instead, every fit would take as many sweeps as the slowest of
    them (R's cap of 100, reached by ~1% of the fits) where the mean is ~20.

    Each turn of the pool runs ``schedule``, one letter per sweep of every slot: ``R`` ranks the
    instruments as R does (O(width^2)); ``C`` only checks that R's ranking would keep the
    invalid set (:func:`_still_top`, O(width)) and sweeps with it, or leaves the slot as it is
    for the next ``R``. Either way each sweep is R's. A fit enters the pool with its first sweep
    done (from ``theta = 0`` R ranks by ``by^2 / sy^2``, the same for every K).

    ``profile_steps = 0`` iterates exactly as R. Otherwise, after a sweep that kept the invalid
    set, ``theta`` goes on to its fixed point for that set (:func:`_profile`); the next sweep
    confirms it (R's convergence test) or moves on. ~3.4 sweeps per fit instead of ~21; the fit
    ends at the fixed point R's sweeps approach, where R stops once a sweep moves ``theta`` by
    at most ``TOL`` (short of it with many invalid SNPs: module docstring) or at ``MAXIT``."""
    fits = pooled_fits_across(bxp[None], byp[None], sx[None], sy[None], mask[None], ks, k_ok[None], slots=slots,
                              schedule=schedule, profile_steps=profile_steps)
    return KFit(*(f[0] for f in fits))


def pooled_fits_across(bxp, byp, sx, sy, mask, ks, k_ok, slots: int, schedule: str = "RCCC",
                       profile_steps: int = 0) -> KFit:
    """:func:`pooled_fits` of every trait of a batch in ONE pool: ``bxp``/``byp`` ``[T, P,
    width]``, ``sx``/``sy``/``mask`` ``[T, width]``, ``k_ok [T, len(ks)]``; fields ``[T,
    len(ks), P]``. Each slot carries its trait's data, so a trait with many fits no longer holds
    every other trait's slots idle (a pool per trait, vmapped, runs every trait for as many
    turns as the one with most fits). Each fit is the same as in a pool of its own."""
    n_traits, n_sets, width = bxp.shape
    n_ks = ks.shape[0]
    n_out = n_traits * n_ks * n_sets
    # (trait, K position) pairs to fit, largest K first; the others last (never loaded)
    order = jnp.argsort(jnp.where(k_ok, -ks[None, :], 1).ravel())
    total = jnp.sum(k_ok) * n_sets
    wx, wy = 1.0 / (sx * sx), 1.0 / (sy * sy)
    first_ranks = jax.vmap(lambda byt, wyt, mt: jax.vmap(lambda by: _ranks(_importance(0.0, 0.0, by, wyt, mt)))(byt))(byp, wy, mask)
    ranked = jax.vmap(lambda th, mu, bx, by, wx, wy, m, q: _sweep(th, mu, bx, by, wx, wy, m, ks[q]))
    given = jax.vmap(_sweep_given)
    still_top = jax.vmap(lambda th, mu, by, wy, m, bad: _still_top(_importance(th, mu, by, wy, m), bad, m))
    profile = jax.vmap(lambda th, bx, by, wx, wy, valid: _profile(th, bx, by, wx, wy, valid, profile_steps))
    finish = jax.vmap(_finish)

    def load(item):
        """Fits ``item`` (one per slot) after R's first sweep."""
        sets, pair = item % n_sets, order[item // n_sets]
        trait, q = pair // n_ks, pair % n_ks
        bx, by, wxs, wys, m = bxp[trait, sets], byp[trait, sets], wx[trait], wy[trait], mask[trait]
        zero = jnp.zeros(item.shape, bxp.dtype)
        bad = m & (first_ranks[trait, sets] < ks[q][:, None])
        theta, mu, r = given(zero, jnp.zeros_like(bx), bx, by, wxs, wys, m, bad)
        return dict(theta=theta, old=zero, it=jnp.ones(item.shape, int), mu=mu, r=r, bx=bx, by=by, wx=wxs, wy=wys,
                    m=m, q=q, out_at=pair * n_sets + sets)

    def advance(s, letter):
        """One sweep of every active fit that is still going (and, for ``C``, keeps its set)."""
        go = s["active"] & _going(s["theta"], s["old"], s["it"])
        if letter == "R":
            theta, mu, r = ranked(s["theta"], s["mu"], s["bx"], s["by"], s["wx"], s["wy"], s["m"], s["q"])
        else:
            bad = s["r"] != 0
            go = go & still_top(s["theta"], s["mu"], s["by"], s["wy"], s["m"], bad)
            theta, mu, r = given(s["theta"], s["mu"], s["bx"], s["by"], s["wx"], s["wy"], s["m"], bad)
        if profile_steps:
            held = jnp.all((r != 0) == (s["r"] != 0), axis=1) & (jnp.abs(theta - s["theta"]) > TOL)
            theta_p, mu_p = profile(theta, s["bx"], s["by"], s["wx"], s["wy"], s["m"] & (r == 0))
            theta, mu = jnp.where(held, theta_p, theta), jnp.where(held[:, None], mu_p, mu)
        return dict(s, theta=jnp.where(go, theta, s["theta"]), old=jnp.where(go, s["theta"], s["old"]),
                    mu=jnp.where(go[:, None], mu, s["mu"]), r=jnp.where(go[:, None], r, s["r"]), it=s["it"] + go)

    def body(s):
        for letter in schedule:
            s = advance(s, letter)
        done = s["active"] & ~_going(s["theta"], s["old"], s["it"])
        fit = finish(s["theta"], s["mu"], s["r"], s["bx"], s["by"], s["wx"], s["wy"], s["m"])
        where = jnp.where(done, s["out_at"], n_out)  # fits not done are dropped
        out = KFit(*(o.at[where].set(f, mode="drop") for o, f in zip(s["out"], fit)))
        fresh = s["next"] + jnp.cumsum(done) - 1
        take = done & (fresh < total)
        new = load(jnp.where(take, fresh, 0))
        fits = {f: jnp.where(take if v.ndim == 1 else take[:, None], v, s[f]) for f, v in new.items()}
        return dict(fits, active=(s["active"] & ~done) | take, next=s["next"] + jnp.sum(done), out=out)

    item = jnp.arange(slots)
    nan = jnp.full(n_out, jnp.nan, bxp.dtype)
    state = dict(load(jnp.minimum(item, jnp.maximum(total - 1, 0))), active=item < total,
                 next=jnp.asarray(slots), out=KFit(nan, nan, nan))
    out = jax.lax.while_loop(lambda s: jnp.any(s["active"]), body, state)["out"]
    return KFit(*(o.reshape(n_traits, n_ks, n_sets) for o in out))


def _k_values(width: int, k_vec) -> jax.Array:
    """The K to fit: R's default ``0 .. width-2``, or ``k_vec`` less those a trait of this
    width cannot have (at least one entry, so shapes stay non-empty; ``k_ok`` masks it)."""
    if k_vec is None:
        return jnp.arange(width - 1)
    return jnp.asarray([k for k in k_vec if k <= width - 2] or [0])


def _first(fits: KFit, k_ok) -> KFit:
    """The fits of data set 0 (``[len(ks)]``), 0 where K is not fitted (weight 0)."""
    return KFit(*(jnp.where(k_ok, f[:, 0], 0.0) for f in fits))


def _bic_weights(negl, n_sample, ks, k_ok):
    bic = jnp.where(k_ok, jnp.log(n_sample) * ks.astype(negl.dtype) + 2.0 * negl, jnp.inf)
    bic = bic - jnp.min(bic)
    w = jnp.where(k_ok, jnp.exp(-0.5 * bic), 0.0)
    return w / jnp.sum(w), jnp.argmin(bic)


def _average(theta, se, w):
    b = jnp.sum(w * theta)
    term = w * jnp.sqrt(se * se + (theta - b) ** 2)
    return b, jnp.sum(jnp.where(jnp.isnan(term), 0.0, term))


def cml_fit(t: Instruments, n_sample, key: jax.Array | None = None, dp: bool = True, num_pert: int = NUM_PERT,
            alpha: float = ALPHA, k_vec: tuple[int, ...] | None = None, profiled: bool = True) -> CMLFit:
    """MendelianRandomization ``mr_cML(object, n = n_sample, MA = TRUE, DP = dp, K_vec =
    k_vec)`` (module docstring; ``k_vec = None`` is R's default ``0:(length(Bx) - 2)``; K above
    the trait's ``nsnp - 2`` are left out, where R would fit them); ``key`` gives the DP draws;
    ``profiled`` takes the DP fits to their fixed points (module docstring)."""
    m = t.mask
    n = t.nsnp
    ks = _k_values(t.bx.shape[-1], k_vec)
    k_ok = ks <= n - 2
    nan = jnp.full((), jnp.nan, t.bx.dtype)
    if not dp:
        pool = dict(NODP_POOL, slots=min(NODP_POOL["slots"], ks.shape[0]))
        fits = _first(pooled_fits(t.bx[None], t.by[None], t.sx, t.sy, m, ks, k_ok, **pool), k_ok)
        w, best = _bic_weights(fits.negl, n_sample, ks, k_ok)
        b, se = _average(fits.theta, fits.se, w)
        gof1 = gof2 = nan
    else:
        pool = DP_POOL if profiled else DP_R_POOL
        both = pooled_fits(*_dp_sets(t, key, num_pert), t.sx, t.sy, m, ks, k_ok, **pool)  # [len(ks), 1 + num_pert]
        b, se, gof1, gof2 = _dp_summary(both, n_sample, ks, k_ok, num_pert)
    return _cml_result(t, n_sample, b, se, gof1, gof2, alpha)


def _dp_sets(t: Instruments, key, num_pert: int):
    """The DP data sets ``[1 + num_pert, width]`` of ``bx`` and ``by``: set 0 is the data, the
    others ``bx + sx Z``, ``by + sy Z'`` drawn from ``key`` slot by slot."""
    width = t.bx.shape[-1]
    kx, ky = jax.random.split(key)
    zx = slot_normals(kx, num_pert, width, t.bx.dtype).T  # [num_pert, width]
    zy = slot_normals(ky, num_pert, width, t.bx.dtype).T
    return jnp.concatenate([t.bx[None], t.bx + zx * t.sx]), jnp.concatenate([t.by[None], t.by + zy * t.sy])


def _dp_summary(both: KFit, n_sample, ks, k_ok, num_pert: int):
    """cML-MA-BIC-DP ``b``, ``se``, GOF1, GOF2 from the fits of every (K, data set)."""
    fits = _first(both, k_ok)
    w, best = _bic_weights(fits.negl, n_sample, ks, k_ok)
    pert = KFit(*(jnp.where(k_ok[:, None], f[:, 1:], 0.0) for f in both))
    theta_bar = jnp.mean(pert.theta, axis=1)
    sd_pert = jnp.std(pert.theta, axis=1, ddof=1)
    w_dp, _ = _bic_weights(jnp.mean(pert.negl, axis=1), n_sample, ks, k_ok)
    b, se = _average(theta_bar, sd_pert, w_dp)
    x = pert.theta[best]
    var_x = jnp.var(x, ddof=1)
    more_var = jnp.var(pert.se[best] ** 2, ddof=1)
    gap = fits.se[best] ** 2 - sd_pert[best] ** 2
    npert = float(num_pert)
    sd_x = jnp.sqrt((jnp.mean((x - jnp.mean(x)) ** 4) - (npert - 3) / (npert - 1) * var_x ** 2) / npert + more_var)
    gof1 = 2.0 * norm.sf(jnp.abs(gap / sd_x))
    gof2 = 2.0 * norm.sf(jnp.abs(gap / jnp.sqrt(2.0 / (npert - 1) * sd_pert[best] ** 4 + more_var)))
    return b, se, gof1, gof2


def _cml_result(t: Instruments, n_sample, b, se, gof1, gof2, alpha) -> CMLFit:
    z = norm.isf(alpha / 2)
    ok = (t.nsnp >= MIN_SNPS) & jnp.isfinite(n_sample) & (n_sample > 0) & jnp.isfinite(b) & jnp.isfinite(se)
    return CMLFit(b=b, se=se, lo=b - z * se, up=b + z * se, pval=norm_pval(b / se), gof1=gof1, gof2=gof2, ok=ok)


def _n_sample(t: Instruments, params: Params):
    if params.n is not None:
        return jnp.asarray(params.n, t.bx.dtype)
    if t.samplesize is not None:
        return t.samplesize
    return jnp.asarray(jnp.nan, t.bx.dtype)


def _as_estimate(t: Instruments, n_sample, fit: CMLFit) -> Estimate:
    reason = jnp.where(t.nsnp < MIN_SNPS, Reason.TOO_FEW_SNPS,
                       jnp.where(jnp.isfinite(n_sample), Reason.NOT_CONVERGED, Reason.NOT_APPLICABLE))
    return estimate(fit.b, fit.se, fit.pval, t.nsnp, ok=fit.ok, reason=reason, lo_ci=fit.lo, up_ci=fit.up)


def mr_cml(t: Instruments, key: jax.Array, params: Params) -> Estimate:
    """Method ``cml``: MendelianRandomization ``mr_cML(object, n, MA = TRUE, DP = params.dp,
    K_vec = params.k_vec)`` with ``n = params.n`` or else the trait's ``samplesize`` (NaN, "not applicable", without
    either); ``params.n_boot`` is unused (R's ``num_pert = 200``). :func:`mr_cml_batch` is what the engine runs."""
    n_sample = _n_sample(t, params)
    return _as_estimate(t, n_sample, cml_fit(t, n_sample, key, dp=params.dp, k_vec=params.k_vec))


def mr_cml_batch(ts: Instruments, keys: jax.Array, params: Params) -> Estimate:
    """:func:`mr_cml` of every trait of ``ts`` (``[T, width]``, keys ``[T]``), equal to it trait
    by trait. The (K, data set) fits of all traits run in one pool (:func:`pooled_fits_across`)
    of ``DP_BATCH_SLOTS`` slots per trait with DP (731 traits 4.5 -> 2.2 s in one run), of
    ``NODP_BATCH_SLOTS`` without (0.09-0.11 -> 0.06-0.07 s; benchmarks/RESULTS.md)."""
    n_traits, width = ts.bx.shape
    ks = _k_values(width, params.k_vec)
    k_ok = ks[None, :] <= ts.nsnp[:, None] - 2
    n_sample = jax.vmap(lambda t: _n_sample(t, params))(ts)
    if not params.dp:
        pool = dict(NODP_POOL, slots=NODP_BATCH_SLOTS * n_traits)
        fits = pooled_fits_across(ts.bx[:, None], ts.by[:, None], ts.sx, ts.sy, ts.mask, ks, k_ok, **pool)

        def one_nodp(t, n, fits, ok):
            first = _first(fits, ok)
            w, _ = _bic_weights(first.negl, n, ks, ok)
            b, se = _average(first.theta, first.se, w)
            nan = jnp.full((), jnp.nan, t.bx.dtype)
            return _as_estimate(t, n, _cml_result(t, n, b, se, nan, nan, ALPHA))

        return jax.vmap(one_nodp)(ts, n_sample, fits, k_ok)
    bxp, byp = jax.vmap(lambda t, key: _dp_sets(t, key, NUM_PERT))(ts, keys)
    pool = dict(DP_POOL, slots=DP_BATCH_SLOTS * n_traits)
    both = pooled_fits_across(bxp, byp, ts.sx, ts.sy, ts.mask, ks, k_ok, **pool)

    def one(t, n, fits, ok):
        b, se, gof1, gof2 = _dp_summary(fits, n, ks, ok, NUM_PERT)
        return _as_estimate(t, n, _cml_result(t, n, b, se, gof1, gof2, ALPHA))

    return jax.vmap(one)(ts, n_sample, both, k_ok)
