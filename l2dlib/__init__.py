"""l2dlib: calibration of multi-expert learning to defer (softmax, one-vs-all and
asymmetric-softmax surrogates).

Modules: ``losses`` (surrogates), ``estimators`` (Eqs. 2-3, rejector, system prediction),
``experts`` (simulated experts), ``data`` (MoG, CIFAR-10), ``models``, ``train`` (one loop),
``metrics`` (ECE and friends), ``studies``, ``runner`` (the studies' runs), ``numerics``
(what decides a CPU result's bits), ``stats`` and ``claims`` (the verdicts), ``results`` (cache and
provenance), ``plots`` and ``theory`` (pointwise risks for the derivations).
"""

from . import numerics as _numerics

# Before any submodule imports torch: the portable numerics (l2dlib.numerics) reach this
# process and every process it starts (workers, notebook kernels, cluster jobs).
_numerics.request_portable()

__version__ = "0.1.0"

#: Methods (surrogate parameterizations) understood by losses and estimators: the paper's
#: two, and the asymmetric softmax of Cao et al. (2023), extended to J experts.
METHODS = ("softmax", "ova", "asymmetric_softmax")
