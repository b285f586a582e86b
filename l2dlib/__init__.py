"""l2dlib: calibration of multi-expert learning to defer (softmax, one-vs-all,
asymmetric-softmax and decoupled surrogates).

Modules, in the order the data flows:

- configuration: ``config`` (the frozen dataclasses), ``profiles`` (the profiles and the
  device), ``numerics`` (what decides a CPU result's bits), ``rng`` (seed streams);
- data and experts: ``data`` (MoG, CIFAR-10), ``experts`` (simulated experts), ``studies``
  (the three studies' grids and what identifies a model);
- model and training: ``models``, ``features`` (the CPU profile's frozen CNN), ``losses``
  (surrogates), ``train`` (one loop);
- estimators, metrics and rows: ``estimators`` (Eqs. 2-3, rejector, system prediction),
  ``metrics`` (ECE and friends), ``evaluation`` (a model's table rows);
- results and the run: ``results`` (cache, tables, provenance), ``batch`` (one batch in any
  process), ``pool`` (the local executor), ``cluster`` (SLURM through submitit), ``tables``
  (gathering and assembling a table), ``runner`` (``run_studies`` and what pages read);
- claims and report: ``stats`` (intervals and the verdict rule), ``claims`` (the paper's
  claims as records), ``report`` (summaries and prose); ``theory`` (pointwise risks for the
  derivations);
- plots and book: ``plots``, ``book`` (the builder), ``__main__`` (the CLI).
"""

from . import numerics as _numerics

# Before any submodule imports torch: the portable numerics (l2dlib.numerics) reach this
# process and every process it starts (workers, notebook kernels, cluster jobs).
_numerics.request_portable()

#: Methods (surrogate parameterizations) understood by losses and estimators: the paper's
#: two, the asymmetric softmax of Cao et al. (2023), extended to J experts, and the
#: decoupled surrogate of Montreuil et al. (2026).
METHODS = ("softmax", "ova", "asymmetric_softmax", "decoupled")
