"""Multivariable MR (MVMR) and correlated instruments, batched over every analysis of a scan.

Modules: :mod:`~mrjax.mv.data` (long MV table -> padded ``[analyses, S, K]`` tensors),
:mod:`~mrjax.mv.fit` (masked GLS, result type), :mod:`~mrjax.mv.regression` (MV-IVW, also robust,
MV-Egger, ``mv_basic``), :mod:`~mrjax.mv.median` (MV-median) with :mod:`~mrjax.mv.l1` (its L1 fits),
:mod:`~mrjax.mv.ivwme` (MV-IVW with measurement error), :mod:`~mrjax.mv.lasso` (MV-lasso),
:mod:`~mrjax.mv.cml` (MVMR-cML-BIC, with data perturbation), :mod:`~mrjax.mv.qhet` (Q minimisation
with heterogeneity), :mod:`~mrjax.mv.gmm` (MV-GMM) and :mod:`~mrjax.mv.pcgmm` (its principal-component form), :mod:`~mrjax.mv.draws` (perturbation normals),
:mod:`~mrjax.mv.ml` (ML with correlated instruments), :mod:`~mrjax.mv.strength` (conditional F,
Q), :mod:`~mrjax.mv.registry` (method ids),
:mod:`~mrjax.mv.api` (``mvmr``, ``mvmr_strength``, ``mvmr_heterogeneity``),
:mod:`~mrjax.mv.equivalents` (R labels), :mod:`~mrjax.mv.instruments` (host-side pipeline),
:mod:`~mrjax.mv.correlation` (host-side LD matrices of the analyses, from a panel or a file).
"""
