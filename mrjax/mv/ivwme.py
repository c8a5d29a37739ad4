"""MV-IVW with measurement error on the exposures (MendelianRandomization ``mr_mvivwme``; Zhu,
Burgess & Grant 2022, arXiv:2203.08668).

Model: ``By_j = Bx*_j' theta + N(0, sy_j^2)`` with the true exposure effects ``Bx*_j`` measured as
``Bx_j ~ N(Bx*_j, Sx_j)``, ``Sx_j = diag(sx_j^2)`` (or with ``correl.x``, below). Profiling out ``Bx*_j`` leaves

    ``Q(theta) = sum_j e_j^2 / v_j``,  ``e_j = By_j - Bx_j' theta``,  ``v_j = sy_j^2 + theta' Sx_j theta``,

and the estimate is ``argmin Q``. R reaches it by alternating the weighted regression of ``By`` on
``Bx~`` with the posterior means ``Bx~_j = Bx_j + Sx_j theta e_j / v_j`` (its update written as a
K x K solve), from a random start ``Bx~_j ~ N(Bx_j, Sx_j)`` (``seed = 20201201``), stopping when
``-Q/2`` changes by less than 1e-4 — so R's estimate is near the minimum, not at it. Here the same
alternation starts from ``Bx~ = Bx`` (:data:`ALTERNATING_STEPS`), then safeguarded Newton steps on
``Q`` (:func:`newton_minimise`: exact autodiff gradient and Hessian) reach the minimum itself;
``converged`` requires the Newton decrement there to be negligible. With nearly collinear
exposures the minimum can lie far along a flat valley (10 of the MV benchmark's 731 analyses
have it at ``|theta|`` 10-60), which R's stopping rule leaves far short.

SE as R: the sandwich ``Var = A^-1 B A^-T`` of the standardised residuals ``t_j = e_j / sqrt(v_j)``,
``B = sum_j grad t_j grad t_j'``, ``A = B + sum_j t_j hess t_j`` (R writes both derivatives out;
here autodiff), times ``max(1, rmse)`` for the random model, where R's ``rmse =
sqrt(sum_j e_j^2 / sy_j^2 / (p - K))`` uses the outcome variances only; ``default`` = fixed below
4 variants, else random. ``Heter.Stat = (p - K) rmse^2`` on ``p - K`` df. CI/p normal or t
(``p - K`` df). R's ``correl`` (instrument correlation) changes only its regression step, not
``Q``, so its fixed point is no longer ``Q``'s minimum: with a correlation matrix this method
returns NaN (not applicable). ``correl.x`` (``correl_x``: correlated exposure errors,
``Sx_j = diag(sx_j) correl.x diag(sx_j)``) is taken as R does, in ``Q``, the alternation and the SE.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax.estimators.common import Reason
from mrjax.mv.data import MVInstruments
from mrjax.mv.fit import (MVEstimate, assemble, exposure_correlation, exposure_effects, least_squares, scale_rows,
                          se_multiplier, uncorrelated)
from mrjax.mv.regression import dist_df

ALTERNATING_STEPS = 30
NEWTON_STEPS = 100
HALVINGS = 40
# Converged when the Newton decrement (~2 (q - min q)) is below this, relative to max(1, q).
# Along the flat valleys of nearly collinear exposures 1e-12 still leaves theta ~1e-6 off.
CONVERGED_DECREMENT = 1e-14


def profile_objective(by, bx, sy, var_x, rows):
    """``Q(theta) = sum_j rows_j (By_j - Bx_j' theta)^2 / (sy_j^2 + theta' Sx_j theta)`` with
    ``Sx_j = diag(var_x_j)`` (``rows`` 0/1: the rows that count), the objective of mv_ivwme and of
    MVMR-cML on its valid variants (qhet's adds ``tau2`` and the exposures' correlation)."""

    def q(theta):
        e = (by - bx @ theta) * rows
        return jnp.sum(e * e / (sy ** 2 + var_x @ (theta * theta)))

    return q


def _objective(t: MVInstruments, correl_x=None):
    """``Q(theta)`` over the analysis's real rows and exposure columns, its residual parts, the
    exposure effects and ``Sx_j theta`` as a function of ``theta`` (``Sx_j = diag(sx_j^2)``, or
    ``diag(sx_j) correl_x diag(sx_j)`` with R's ``correl.x``)."""
    m = t.mask.astype(t.bx.dtype)
    bx, var_x = exposure_effects(t)
    if correl_x is None:
        def sx_theta(theta):
            return var_x * theta
    else:
        sd = jnp.sqrt(var_x)
        cov = correl_x[None] * sd[:, :, None] * sd[:, None, :]

        def sx_theta(theta):
            return cov @ theta

    def parts(theta):
        e = (t.by - bx @ theta) * m
        v = t.sy ** 2 + sx_theta(theta) @ theta
        return e, v

    if correl_x is None:
        return profile_objective(t.by, bx, t.sy, var_x, m), parts, bx, sx_theta

    def q(theta):
        e, v = parts(theta)
        return jnp.sum(e * e / v)

    return q, parts, bx, sx_theta


def _alternate(t: MVInstruments, bx, sx_theta, steps: int):
    """R's iteration from ``Bx~ = Bx``: regress ``By`` on ``Bx~`` (weights ``sy^-2``), update
    ``Bx~_j = Bx_j + Sx_j theta e_j / v_j`` (R's ``(theta theta' / sy_j^2 + Sx_j^-1)^-1 (...)``
    by the Woodbury identity); returns ``theta``."""

    def regress(bx_tilde):
        xw, yw = scale_rows(t, bx_tilde, t.by)
        return least_squares(xw, yw, t.mask, t.xmask).coef

    def step(_, theta):
        e = t.by - bx @ theta
        s = sx_theta(theta)
        v = t.sy ** 2 + s @ theta
        return regress(bx + s * (e / v)[:, None])

    return jax.lax.fori_loop(0, steps, step, regress(bx))


class NewtonState(NamedTuple):
    """Where :func:`newton_minimise` is: steps taken ``it``, ``theta``, its next ``step``, ``done``
    (converged) and ``stuck`` (no step lowered ``q``)."""

    it: jax.Array
    theta: jax.Array
    step: jax.Array
    done: jax.Array
    stuck: jax.Array


def _direction(q, pinned, theta, derivatives=None):
    """The Newton step at ``theta`` on the Hessian with its eigenvalues made positive, its
    decrement, whether the Hessian was positive definite and ``q(theta)``; ``derivatives(theta)``
    gives ``(q, gradient, Hessian)`` (default: automatic differentiation of ``q``)."""
    if derivatives is None:
        value, g, h = q(theta), jax.grad(q)(theta), jax.hessian(q)(theta)
    else:
        value, g, h = derivatives(theta)
    lam, vec = jnp.linalg.eigh(h + pinned)
    size = jnp.maximum(jnp.abs(lam), 1e-12 * jnp.max(jnp.abs(lam)))
    step = -vec @ ((vec.T @ g) / size)
    return step, -(g @ step), jnp.all(lam > 0), value


def _small_decrement(value, decrement, convex, decrement_tol):
    return convex & (decrement <= decrement_tol * jnp.maximum(1.0, value))


def newton_start(q, pinned, theta, decrement_tol: float = CONVERGED_DECREMENT, derivatives=None) -> NewtonState:
    """:func:`newton_minimise`'s state at ``theta`` before its first step (``derivatives``: as
    :func:`newton_step`'s)."""
    step, decrement, convex, value = _direction(q, pinned, theta, derivatives)
    small = _small_decrement(value, decrement, convex, decrement_tol)
    return NewtonState(jnp.zeros((), jnp.int32), theta, step, small, jnp.zeros((), bool))


def newton_step(q, pinned, state: NewtonState, decrement_tol: float = CONVERGED_DECREMENT,
                derivatives=None, one_at_a_time: bool = False) -> NewtonState:
    """One step of :func:`newton_minimise`: the longest of ``1, 1/2, ...`` times ``state.step`` that
    lowers ``q`` (none: ``stuck``), then the next step and the convergence test there.
    ``derivatives(theta)``: ``(q, gradient, Hessian)`` where they have a cheaper closed form than
    automatic differentiation of ``q``; ``one_at_a_time``: try the step lengths in turn, for an
    objective too costly to evaluate at all :data:`HALVINGS` of them at once (the same step)."""
    now = q(state.theta)
    if one_at_a_time:
        def lowers(i):
            return q(state.theta + 0.5 ** i.astype(now.dtype) * state.step) < now

        first = jax.lax.while_loop(lambda i: (i < HALVINGS) & ~lowers(i), lambda i: i + 1, jnp.zeros((), jnp.int32))
    else:
        sizes = 0.5 ** jnp.arange(HALVINGS, dtype=now.dtype)
        lower = jax.vmap(q)(state.theta[None, :] + sizes[:, None] * state.step[None, :]) < now
        first = jnp.where(jnp.any(lower), jnp.argmax(lower), HALVINGS)
    moved = first < HALVINGS
    theta = jnp.where(moved, state.theta + 0.5 ** first.astype(now.dtype) * state.step, state.theta)
    step, decrement, convex, value = _direction(q, pinned, theta, derivatives)
    return NewtonState(state.it + 1, theta, step, _small_decrement(value, decrement, convex, decrement_tol), ~moved)


def newton_going(state: NewtonState):
    """Whether :func:`newton_minimise` takes another step."""
    return (state.it < NEWTON_STEPS) & ~state.done & ~state.stuck


def newton_minimise(q, pinned, theta, decrement_tol: float = CONVERGED_DECREMENT):
    """Minimise ``q`` from ``theta`` by Newton steps on the Hessian with its eigenvalues made
    positive (``|lambda|``, at least 1e-12 of the largest: a descent direction where ``q`` is
    not convex, as along the long, curved valleys of nearly collinear exposures), each step the
    longest of ``1, 1/2, ..., 2^-(HALVINGS-1)`` that lowers ``q``; stops when the Newton
    decrement is negligible (below ``decrement_tol`` relative to ``max(1, q)``) (converged, at
    a positive definite Hessian), when no step lowers ``q``, or after :data:`NEWTON_STEPS`
    steps. Returns ``theta`` and whether it converged. The pieces (:func:`newton_start`,
    :func:`newton_step`, :func:`newton_going`) let MVMR-cML pool many such minimisations."""
    state = jax.lax.while_loop(newton_going, lambda s: newton_step(q, pinned, s, decrement_tol),
                               newton_start(q, pinned, theta, decrement_tol))
    return state.theta, state.done


def mv_ivwme(t: MVInstruments, key, *, model: str = "default", distribution: str = "normal",
             correl_x=None) -> MVEstimate:
    """``mr_mvivwme(model, distribution, correl.x = correl_x)``: ``argmin Q`` (module docstring)
    with R's sandwich SE; ``correl_x`` the exposures' ``K x K`` error correlation (default none:
    ``Sx_j`` diagonal); needs ``nsnp > K``."""
    del key
    correl_x = exposure_correlation(correl_x, t.bx.shape[-1], t.bx.dtype, "mv_ivwme", "correl_x")
    q, parts, bx, sx_theta = _objective(t, correl_x)
    pinned = jnp.diag(1.0 - t.xmask.astype(t.bx.dtype))  # padded exposures: coefficient 0
    hess = jax.hessian(q)
    theta, converged = newton_minimise(q, pinned, _alternate(t, bx, sx_theta, ALTERNATING_STEPS))
    h = hess(theta) + pinned

    def standardised(theta):
        e, v = parts(theta)
        return e / jnp.sqrt(v)

    jac = jax.jacfwd(standardised)(theta)  # [S, K]; padded rows and columns are 0
    b_mat = jac.T @ jac
    a_mat = 0.5 * h  # the Hessian of sum(t^2) / 2
    a_inv = jnp.linalg.inv(a_mat)
    var = a_inv @ b_mat @ a_inv.T
    e, _ = parts(theta)
    n, k = t.nsnp, t.nexp
    df = n - k
    rmse = jnp.sqrt(jnp.sum(e * e / t.sy ** 2) / jnp.where(df > 0, df, jnp.nan))
    se = jnp.sqrt(jnp.diag(var)) * se_multiplier(model, rmse, n)
    d = dist_df(distribution, df)
    independent = uncorrelated(t)
    reason = jnp.where(independent, jnp.where(df > 0, Reason.NOT_CONVERGED, Reason.TOO_FEW_SNPS), Reason.NOT_APPLICABLE)
    return assemble(t, theta, se, p_df=d, ci_df=d, ok=independent & (df > 0) & converged, reason=reason,
                    q=df * rmse ** 2, q_df=df)
