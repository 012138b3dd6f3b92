r"""`wsol-export-tflite`: a trained workdir to TFLite (logic: tflite_lib).

    python export/export_tflite.py --workdir=runs/demo --output=/tmp/tflite
    python -m wsol_keras.export.export_tflite --workdir=runs/demo \
        --output=/tmp/tflite --variants=float32,int8 --num_calibration=200

Writes <method>_<backbone>_<variant>.tflite for each variant (float32, float16,
dynamic_int8, int8 calibrated on the training split) and tflite_manifest.json
(sizes, inputs, outputs, CAM threshold, class names).
"""

from absl import app
from absl import flags

from wsol_keras.export import tflite_lib

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("workdir", None, "A wsol-train workdir.")
    flags.DEFINE_string("output", None, "Output folder for the .tflite files.")
    flags.DEFINE_list(
        "variants",
        ["float32", "float16", "dynamic_int8", "int8"],
        "Variants to write.",
    )
    flags.DEFINE_integer("num_calibration", 64, "Training images for int8 calibration.")
    flags.DEFINE_enum(
        "postprocess",
        "box",
        ["box", "heatmap", "none"],
        "Most post-processing to put in the float models' graphs (falls back "
        "when its ops do not convert).",
    )
    flags.mark_flags_as_required(["workdir", "output"])


def main(argv):
    del argv
    manifest = tflite_lib.export_tflite(
        FLAGS.workdir,
        FLAGS.output,
        variants=tuple(FLAGS.variants),
        num_calibration=FLAGS.num_calibration,
        postprocess=FLAGS.postprocess,
    )
    for variant, info in manifest["variants"].items():
        print(
            f"{info['file']}: {info['bytes'] / 1024:.1f} KiB, input "
            f"{info['input_dtype']}, outputs {', '.join(info['outputs'])}"
        )


def run_main():
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run_main()
