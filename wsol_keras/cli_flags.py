"""The flags of every command-line tool, importable without TensorFlow.

A console script defines and parses its flags from here before it imports
the tool's module (and with it TensorFlow), so ``--help`` and command-line
mistakes answer at once (`wsol_keras.cli.console`). Each tool's module
re-exports its function as ``define_flags``.

The choices below mirror constants of the tools' modules
(tests/test_cli_startup.py checks that they agree).
"""

from absl import flags

from wsol_keras import config_flag

# wsol-train's default experiment (the package's configs/synthetic_dgl.py).
DEFAULT_TRAIN_CONFIG = config_flag.resolve_config("synthetic_dgl")
# wsol_keras.evaluation.protocol
BOX_METHODS = ("largest_contour", "spn", "danet_union")
IMAGE_SIZE_MODES = ("fixed", "original")
# wsol_keras.localization.maps
MAP_METHODS = (
    "cam", "topk", "dgl", "pcs", "gradcam",
    "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam",
)
# wsol_keras.predict.predictors, wsol_keras.predict.image_files
PREPROCESS_MODES = ("auto", "none", "caffe", "tf", "torch")
DEFAULT_MAX_PIXELS = 50_000_000
# wsol_keras.export.inference
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


def train_flags(flag_values=flags.FLAGS):
    config_flag.define_config_flag(
        "config",
        DEFAULT_TRAIN_CONFIG,
        "Experiment config: an installed config's name (synthetic_spn, "
        "cub_vgg16_cam, ...) or a config file; ':smoke' appended shrinks the "
        "run; fields can be overridden as --config.train.epochs=3.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "workdir",
        None,
        "Directory for checkpoints, logs and the report (required).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "strategy",
        "default",
        ["default", "mirrored", "multiworker"],
        "tf.distribute strategy.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "cpu_replicas",
        0,
        "Split the CPU into this many "
        "logical devices (to try --strategy=mirrored on CPU).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "evaluate",
        True,
        "Evaluate the test split after training.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "print_config",
        False,
        "Print the effective config (file + --config.* overrides) and exit.",
        flag_values=flag_values,
    )
    flags.register_multi_flags_validator(
        ["workdir", "print_config"],
        lambda f: bool(f["workdir"] or f["print_config"]),
        message="--workdir is required (where the run is written)",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "allow_config_change",
        False,
        "Continue an existing workdir although the requested config differs "
        "from its config.json (the run refuses by default, naming the fields); "
        "the old config.json is kept as config.previous-<time>.json.",
        flag_values=flag_values,
    )


def eval_flags(flag_values=flags.FLAGS):
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("workdir", None, "A wsol-train workdir (required).", **fv)
    flags.DEFINE_string("split", "test", "Split to evaluate.", **fv)
    flags.DEFINE_string(
        "map_method",
        None,
        "cam | topk | dgl | pcs | gradcam | gradcam++ | xgradcam | layercam | "
        "hirescam | eigencam | scorecam (default: the workdir's config).",
        **fv,
    )
    flags.DEFINE_string(
        "dgl_layer",
        None,
        "Full layer path of the layer map methods (dgl, pcs, the CAM family), e.g. "
        "backbone/small_cnn_features/stage3_relu1 (see --list_layers).",
        **fv,
    )
    flags.DEFINE_float(
        "cam_threshold", None, "Fixed CAM threshold (default: chosen on val).", **fv
    )
    flags.DEFINE_integer("max_images", None, "Evaluate at most this many.", **fv)
    flags.DEFINE_integer(
        "scorecam_channels", None,
        "Score-CAM: channels used (top-N by mean activation; N masked forward "
        "passes per image; default: the workdir's config).", **fv,
    )
    flags.DEFINE_enum(
        "box_method", None, list(BOX_METHODS),
        "Box of the Loc metrics and CorLoc (default: the workdir's config).", **fv,
    )
    flags.DEFINE_enum(
        "image_size_mode", None, list(IMAGE_SIZE_MODES),
        "Score maps and boxes at data.image_size or each image's original size.", **fv,
    )
    flags.DEFINE_bool("ten_crop", None, "Ten-crop classification (maps: eval.ten_crop_maps).", **fv)
    flags.DEFINE_list(
        "sweep_layers",
        None,
        "Instead of the full protocol, sweep DGL (or --map_method=gradcam, ...) maps "
        "of these layer paths in one pass and print GT-known Loc / MaxBoxAccV2 "
        "per layer (DGL Table 1); writes layer_sweep.json.",
        **fv,
    )
    flags.DEFINE_bool(
        "list_layers",
        False,
        "Print the model's layer paths (marking those usable as --dgl_layer / "
        "--sweep_layers) and exit.",
        **fv,
    )
    flags.DEFINE_bool(
        "print_config",
        False,
        "Print the effective config (the workdir's, with these flags applied) "
        "and exit.",
        **fv,
    )
    flags.mark_flags_as_required(["workdir"], flag_values=flag_values)


def export_flags(flag_values=flags.FLAGS):
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("workdir", None, "A wsol-train workdir.", **fv)
    flags.DEFINE_string(
        "output",
        None,
        "Export base folder (TF Serving's model base path parent).",
        **fv,
    )
    flags.DEFINE_string(
        "model_name", None, "Served model name (default: <method>_<backbone>).", **fv
    )
    flags.DEFINE_integer(
        "version", None, "Version number (default: next free one).", **fv
    )
    flags.DEFINE_integer("top_k", 5, "Classes returned per image.", **fv)
    flags.DEFINE_integer(
        "heatmap_size", None, "Heat map side (default: input size).", **fv
    )
    flags.DEFINE_integer(
        "max_image_pixels",
        DEFAULT_MAX_IMAGE_PIXELS,
        "Largest height x width of a request image; larger ones get "
        "INVALID_ARGUMENT from their header, before decoding (model card).",
        lower_bound=1,
        **fv,
    )
    flags.DEFINE_bool("overwrite", False, "Replace an existing version folder.", **fv)
    flags.mark_flags_as_required(["workdir", "output"], flag_values=flag_values)


def export_tflite_flags(flag_values=flags.FLAGS):
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("workdir", None, "A wsol-train workdir.", **fv)
    flags.DEFINE_string("output", None, "Output folder for the .tflite files.", **fv)
    flags.DEFINE_list(
        "variants",
        ["float32", "float16", "dynamic_int8", "int8"],
        "Variants to write.",
        **fv,
    )
    flags.DEFINE_integer(
        "num_calibration", 64, "Training images for int8 calibration.", **fv
    )
    flags.DEFINE_enum(
        "postprocess",
        "box",
        ["box", "heatmap", "none"],
        "Most post-processing to put in the float models' graphs; a level whose "
        "ops do not convert to TFLite builtins falls back to the next one and "
        "the host computes the rest (one line per variant says which; "
        "WSOL_TFLITE_VERBOSE=1 shows the converter's diagnostics).",
        **fv,
    )
    flags.DEFINE_enum(
        "map_method",
        "auto",
        ["auto"] + list(MAP_METHODS),
        "The map the models carry: auto = the workdir's map when its ops "
        "convert to TFLite, else CAM (gradient maps such as dgl need ops "
        "LiteRT lacks); the manifest says which (map_method, map_fallback).",
        **fv,
    )
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Replace another model's files (and manifest) in --output; without it "
        "the export is refused naming them. The same model adds its variants.",
        **fv,
    )
    flags.mark_flags_as_required(["workdir", "output"], flag_values=flag_values)


def predict_flags(flag_values=flags.FLAGS):
    flags.DEFINE_string("workdir", None, "A wsol-train workdir (or use --classifier).", flag_values=flag_values)
    flags.DEFINE_string(
        "classifier", None,
        "Instead of --workdir: a keras.applications name (VGG16, ResNet50, ...) "
        "or a .keras file; needs --layer.", flag_values=flag_values)
    flags.DEFINE_string(
        "weights", "imagenet",
        "keras.applications weights: imagenet, a weights file, or none.", flag_values=flag_values)
    flags.DEFINE_string("layer", None, "Layer path of the DGL / CAM-family maps.", flag_values=flag_values)
    flags.DEFINE_enum(
        "map_method", None, list(MAP_METHODS),
        "Map method (workdir default: its config; classifier default: dgl).", flag_values=flag_values)
    flags.DEFINE_float("cam_threshold", None, "Box threshold (default: the workdir's).", flag_values=flag_values)
    flags.DEFINE_integer("image_size", None, "Classifier input side (default: the model's).", flag_values=flag_values)
    flags.DEFINE_enum(
        "preprocess", "auto", list(PREPROCESS_MODES),
        "Classifier input preprocessing (auto: keras.applications' own).", flag_values=flag_values)
    flags.DEFINE_string("class_names", None, "Text file, one class name per line.", flag_values=flag_values)
    flags.DEFINE_string("images", None, "Folder (recursive), glob pattern or list file.", flag_values=flag_values)
    flags.DEFINE_string("image_root", None, "Folder image ids are relative to.", flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output folder.", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace the files of a previous run.", flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 16, "Images per model call.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer(
        "max_pixels", DEFAULT_MAX_PIXELS,
        "Skip images with more pixels (read from the header before decoding).",
        lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("overlay_max_side", 1024, "Longest overlay side (0: original).", flag_values=flag_values)
    flags.mark_flags_as_required(["images", "output"], flag_values=flag_values)


def score_flags(flag_values=flags.FLAGS):
    config_flag.define_config_flag(
        "config", None,
        "Experiment config naming the data source (an installed config's name "
        "or a config file); fields as "
        "--config.data.root=...", flag_values=flag_values)
    flags.DEFINE_string("scoremap_root", None, "Folder of <image_id>.npy maps.", flag_values=flag_values)
    flags.DEFINE_string("split", "test", "Split to score.", flag_values=flag_values)
    flags.DEFINE_float("cam_threshold", None, "CAM threshold of GT-known Loc.", flag_values=flag_values)
    flags.DEFINE_integer("max_images", None, "Score at most this many images.", flag_values=flag_values)
    flags.DEFINE_string("output", None, "Folder for metrics.json and box_accuracy.png.", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing metrics.json in --output.", flag_values=flag_values)
    flags.mark_flags_as_required(["config", "scoremap_root"], flag_values=flag_values)
