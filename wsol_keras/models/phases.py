"""What a method runs around its main fit, for wsol-train (method-neutral).

A method may declare, by its registry name:

* ``prepare(model, config, data_info)``: right after the model is built,
  before anything is written and before a checkpoint is restored (e.g. load
  weights another run trained, failing on a bad file first);
* ``pre_fit_phases(config)``: a list of `PreFitPhase` runs that wsol-train
  trains, each in its own subfolder of the workdir, before the method's fit.

SLT-Net's independently trained classifier (Guo et al., CVPR 2022, Sec. 3.1,
Fig. 2b) is the first such method.  `wsol_keras.training` asks this module
and names no method.
"""

from wsol_keras.models import slt_classifier_phase
from wsol_keras.models.base import PreFitPhase  # noqa: F401  (the phase type)

# method name -> module with prepare(model, config, data_info) and
# pre_fit_phases(config).
METHOD_PHASES = {
    "slt": slt_classifier_phase,
}


def prepare(model, config, data_info):
    """Runs the method's ``prepare`` hook, if it has one."""
    hooks = METHOD_PHASES.get(config.method.name)
    if hooks is not None:
        hooks.prepare(model, config, data_info)


def pre_fit_phases(config):
    """The method's `PreFitPhase` list (empty for most methods)."""
    hooks = METHOD_PHASES.get(config.method.name)
    return [] if hooks is None else list(hooks.pre_fit_phases(config))
