r"""`wsol-export-tflite`: a trained workdir to TFLite (logic: tflite_lib).

    python export/export_tflite.py --workdir=runs/demo --output=/tmp/tflite
    python -m wsol_keras.export.export_tflite --workdir=runs/demo \
        --output=/tmp/tflite --variants=float32,int8 --num_calibration=200

Writes <method>_<backbone>_<variant>.tflite for each variant (float32, float16,
dynamic_int8, int8 calibrated on the training split) and tflite_manifest.json
(sizes, inputs, outputs, CAM threshold, class names).
"""

import logging

from absl import flags

from wsol_keras import cli
from wsol_keras.training import workdir_lock
from wsol_keras.export import tflite_lib

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
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
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Replace another model's files (and manifest) in --output; without it "
        "the export is refused naming them. The same model adds its variants.",
        **fv,
    )
    flags.mark_flags_as_required(["workdir", "output"], flag_values=flag_values)


def main(argv):
    del argv
    # tf.saved_model.save logs "Assets written to <tmp>" once per attempt.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    with workdir_lock.directory_lock(FLAGS.output, "wsol-export-tflite"):
        manifest = tflite_lib.export_tflite(
            FLAGS.workdir,
            FLAGS.output,
            variants=tuple(FLAGS.variants),
            num_calibration=FLAGS.num_calibration,
            postprocess=FLAGS.postprocess,
            overwrite=FLAGS.overwrite,
        )
    for info in manifest["variants"].values():
        print(tflite_lib.describe_variant(info))
    print(f"manifest: {tflite_lib.MANIFEST_FILE} in {FLAGS.output}")


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-export-tflite")


if __name__ == "__main__":
    run_main()
