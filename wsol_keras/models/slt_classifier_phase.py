"""SLT-Net's independently trained classifier, wired into wsol-train.

Guo et al., "Strengthen Learning Tolerance for Weakly Supervised Object
Localization", CVPR 2022, Sec. 3.1 and Fig. 2b: "The classifier is trained
independently from the localizer and regressor"; on CUB its output layer is
changed from 1000 to 200 classes over ImageNet weights (Sec. 4.2, Top-1 Cls
76.6 with VGG16).  `SLTModel` freezes its classifier branch when the
classifier comes from its own run, which is one of:

* ``config.method.classifier_weights``: a finished wsol-train workdir (or its
  ``model.weights.h5``) of a CAM model with ``conv_filters=()`` or of an SLT
  model.  Loaded before anything is written, with errors naming the file,
  the variable and the shapes.
* ``config.method.classifier_train.epochs > 0``: phase 1 of wsol-train trains
  the classifier alone into ``<workdir>/classifier/`` -- a complete wsol-train
  workdir of its own (config.json, atomic per-epoch checkpoints, history.csv
  with the learning rate), so it resumes exactly and ``wsol-eval`` reads it --
  on ``config.train`` with ``classifier_train``'s fields replacing theirs;
  phase 2 copies it into the SLT classifier branch and trains localizer and
  regressor.

The classifier's own run has the SLT classifier's head
(``config.method.classifier_head``): for "gap" a CAM model with
``conv_filters=()`` (a 1x1 convolution to C maps followed by GAP equals GAP
followed by a Dense layer with the same weights, ACoL Sec. 3.1); for
"vgg_fc" (VGG16's fc6 / fc7, Sec. 4.2) the internal method "slt_classifier"
(`wsol_keras.models.classifier`).  A source whose head differs is refused.
"""

import copy
import os

import numpy as np

from wsol_keras.models import stored
from wsol_keras.models.backbones import SURGERY_DEFAULTS
from wsol_keras.models.base import PreFitPhase
from wsol_keras.models.registry import build_model, default_method_config

PHASE_DIR = "classifier"
# Phase 1's method for a head other than GAP (`wsol_keras.models.classifier`).
CLASSIFIER_METHOD = "slt_classifier"
# config.model fields a source classifier must share with the SLT run (its
# feature extractor); `weights` only says how the source was initialized.
_MODEL_FIELDS_THAT_MATTER = (
    "backbone",
    "resnet_last_stride",
    "resnet_large_feature_map",
    "vgg_large_feature_map",
    "vgg_released_pools",
    "keras_hub_last_stride",
)


def phase_workdir(workdir):
    """Where phase 1 trains the classifier: ``<workdir>/classifier``."""
    return os.path.join(workdir, PHASE_DIR)


def phase_config(config):
    """Config of phase 1 (a CAM run with ``conv_filters=()``), or None.

    None unless ``config.method`` is SLT with ``classifier_train.epochs > 0``.
    The copy keeps data, model, seed and the optimizer family of `config`;
    ``config.method.classifier_train``'s fields replace those of
    ``config.train``.
    """
    if config.method.name != "slt" or "classifier_train" not in config.method:
        return None
    schedule = config.method.classifier_train
    if not int(schedule.get("epochs", 0)):
        return None
    phase = copy.deepcopy(config)
    phase.unlock()
    head = config.method.get("classifier_head", "gap")
    if head == "gap":
        phase.method = default_method_config("cam")
        phase.method.conv_filters = ()
    else:
        phase.method = default_method_config(CLASSIFIER_METHOD)
        phase.method.head = head
    for field, value in schedule.items():
        if field not in phase.train:
            raise ValueError(
                f"config.method.classifier_train.{field}: config.train has no "
                "such field to replace"
            )
        phase.train[field] = value
    phase.eval.map_method = "cam"
    phase.eval.topk = 1
    phase.lock()
    return phase


def resolve_weights_file(path):
    """(weights file, its workdir) of a ``classifier_weights`` path."""
    path = os.fspath(path)
    if os.path.isdir(path):
        directory, weights = path, stored.final_weights_path(path)
    else:
        directory, weights = os.path.dirname(os.path.abspath(path)), path
    if not os.path.exists(weights):
        raise FileNotFoundError(
            f"config.method.classifier_weights={path!r}: {weights} not found "
            "(give a finished wsol-train workdir or its model.weights.h5)"
        )
    if not weights.endswith(".weights.h5"):
        raise ValueError(
            f"config.method.classifier_weights={path!r}: {weights} is not a "
            "Keras .weights.h5 file"
        )
    config_json = os.path.join(directory, stored.CONFIG_FILE)
    if not os.path.exists(config_json):
        raise FileNotFoundError(
            f"config.method.classifier_weights={path!r}: {config_json} not "
            "found; the weights file must lie in the wsol-train workdir that "
            "wrote it (its config.json describes the model)"
        )
    return weights, directory


def load_source_classifier(path, config, data_info):
    """Builds the model that wrote `path` and loads its weights.

    Checks that its feature extractor and classes are the SLT run's.

    Returns:
        (source model, weights file).
    """
    weights, directory = resolve_weights_file(path)
    source_config, source_info = stored.read_config(directory)
    where = os.path.join(directory, stored.CONFIG_FILE)
    defaults = SURGERY_DEFAULTS  # fields older workdirs lack
    for field in _MODEL_FIELDS_THAT_MATTER:
        mine = config.model.get(field, defaults.get(field))
        theirs = source_config.model.get(field, defaults.get(field))
        if mine != theirs:
            raise ValueError(
                f"{where}: model.{field}={theirs!r}, the SLT run has "
                f"model.{field}={mine!r}; the classifier must be trained with "
                "the SLT classifier's feature extractor"
            )
    method = source_config.method.name
    _check_head(where, source_config, config)
    if method == "cam" and tuple(source_config.method.get("conv_filters", ())):
        raise ValueError(
            f"{where}: method 'cam' with conv_filters="
            f"{tuple(source_config.method.conv_filters)}; the SLT classifier "
            "is GAP -> one Dense layer, which equals only a CAM head without "
            "3x3 convs (1x1 conv then GAP, ACoL Sec. 3.1): train it with "
            "--config.method.conv_filters='()'"
        )
    if method not in ("cam", "slt", CLASSIFIER_METHOD):
        raise ValueError(
            f"{where}: method {method!r}; a classifier for SLT comes from a "
            f"'cam' (conv_filters=()), an {CLASSIFIER_METHOD!r} or an 'slt' "
            "workdir"
        )
    _check_classes(where, source_info, data_info)
    source_config.model.weights = None  # the file holds every weight
    model = build_model(source_config, source_info)
    try:
        model.load_weights(weights)
    except Exception as e:  # Keras raises several types for a bad file
        raise ValueError(
            f"{weights}: cannot be loaded into the {method!r} model that "
            f"{where} describes: {e}"
        ) from e
    return model, weights


def source_head(method_config):
    """The classifier head ("gap" / "vgg_fc") of a CAM, SLT or slt_classifier
    config.method."""
    name = method_config.name
    if name == "slt":
        return method_config.get("classifier_head", "gap")
    if name == CLASSIFIER_METHOD:
        return method_config.head
    return "gap"  # CAM: GAP -> Dense as a 1x1 conv


def _check_head(where, source_config, config):
    theirs = source_head(source_config.method)
    mine = config.method.get("classifier_head", "gap")
    if theirs != mine:
        raise ValueError(
            f"{where}: its classifier head is {theirs!r} (method "
            f"{source_config.method.name!r}), the SLT run has "
            f"config.method.classifier_head={mine!r}; train the classifier "
            "with the same head"
        )


def _check_classes(where, source_info, data_info):
    theirs = source_info.get("class_names")
    mine = data_info.get("class_names")
    if theirs is None or mine is None:
        return  # shapes still checked when copying
    if list(theirs) != list(mine):
        if len(theirs) != len(mine):
            detail = f"{len(theirs)} classes, the SLT run's data has {len(mine)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(theirs, mine)) if a != b)
            detail = (
                f"class {i} is {theirs[i]!r}, the SLT run's data has {mine[i]!r}"
            )
        raise ValueError(
            f"{where}: data_info.class_names differ from this run's: {detail}; "
            "its logits would name other classes"
        )


def classifier_variables(model):
    """(body variables, (kernel [F, C], bias [C])) of a CAM / SLT /
    slt_classifier model; the body is the backbone and, with VGG16's fc head,
    its fc6 / fc7.

    The kernel of a CAM head's 1x1 conv [1, 1, F, C] is returned as [F, C].
    """
    if hasattr(model, "classifier_fc"):  # SLTModel
        fc = model.classifier_fc
        body = model.classifier_backbone.weights + model.classifier_pool.weights
        return body, (fc.kernel, fc.bias)
    if hasattr(model, "top"):  # ClassifierModel
        fc = model.fc
        return model.backbone.weights + model.top.weights, (fc.kernel, fc.bias)
    conv = model.head.classifier
    return model.backbone.weights, (conv.kernel, conv.bias)


def copy_classifier(slt_model, source_model, source_name):
    """Assigns the source classifier's weights to `slt_model`'s classifier.

    Raises:
        ValueError naming `source_name`, both variables and their shapes on
        the first mismatch.
    """
    src_backbone, (src_kernel, src_bias) = classifier_variables(source_model)
    dst_backbone, _ = classifier_variables(slt_model)
    if len(src_backbone) != len(dst_backbone):
        raise ValueError(
            f"{source_name}: its backbone has {len(src_backbone)} variables, "
            f"the SLT classifier's {len(dst_backbone)}"
        )
    pairs = list(zip(src_backbone, dst_backbone))
    kernel = np.asarray(src_kernel.numpy())
    kernel = kernel.reshape(kernel.shape[-2:])  # [1, 1, F, C] -> [F, C]
    head = [(src_kernel, slt_model.classifier_fc.kernel, kernel)]
    head.append((src_bias, slt_model.classifier_fc.bias, src_bias.numpy()))
    values = [(s, d, s.numpy()) for s, d in pairs] + head
    for src, dst, value in values:
        if tuple(value.shape) != tuple(dst.shape):
            read_as = (
                f" (as a Dense kernel {tuple(value.shape)})"
                if tuple(value.shape) != tuple(src.shape)
                else ""
            )
            raise ValueError(
                f"{source_name}: variable {src.path} has shape "
                f"{tuple(src.shape)}{read_as}, the SLT classifier's {dst.path} "
                f"{tuple(dst.shape)}"
            )
    for _, dst, value in values:  # checked all first: no half-copied branch
        dst.assign(value)


def load_classifier_weights(slt_model, path, config, data_info):
    """Loads ``config.method.classifier_weights`` into `slt_model`'s classifier."""
    source, weights = load_source_classifier(path, config, data_info)
    copy_classifier(slt_model, source, weights)


def prepare(model, config, data_info):
    """wsol-train, right after building: load ``classifier_weights`` if set.

    Runs before the workdir is written (a bad file fails the run first) and
    before the checkpoint is restored (a resumed run keeps the classifier it
    trained with, even if the file changed since).
    """
    path = getattr(model, "classifier_weights", None)
    if path:
        load_classifier_weights(model, path, config, data_info)


def pre_fit_phases(config):
    """[the classifier's own run] when ``classifier_train.epochs > 0``, else [].

    wsol-train trains it into ``<workdir>/classifier`` (a complete workdir of
    its own; a finished phase reruns as a resume and is copied again), then
    copies it into the SLT classifier branch.
    """
    phase = phase_config(config)
    if phase is None:
        return []
    return [
        PreFitPhase(
            name=PHASE_DIR,
            config=phase,
            config_field="config.method.classifier_train",
            apply=copy_classifier,
        )
    ]
