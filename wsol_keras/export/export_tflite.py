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
from wsol_keras import cli_flags
from wsol_keras.training import workdir_lock
from wsol_keras.export import tflite_lib

FLAGS = flags.FLAGS


define_flags = cli_flags.export_tflite_flags


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
            map_method=FLAGS.map_method,
            overwrite=FLAGS.overwrite,
        )
    print(f"map: {manifest['map_method']} ({manifest['heatmap']})")
    for info in manifest["variants"].values():
        print(tflite_lib.describe_variant(info))
    print(f"manifest: {tflite_lib.MANIFEST_FILE} in {FLAGS.output}")


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-export-tflite")


if __name__ == "__main__":
    run_main()
