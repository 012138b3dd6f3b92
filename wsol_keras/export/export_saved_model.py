r"""`wsol-export`: a trained workdir as a TF Serving SavedModel (logic: saved_model_lib).

    wsol-export --workdir=runs/demo --output=/tmp/models
    # -> /tmp/models/<method>_<backbone>/<next version>/ (saved_model.pb, variables/,
    #    assets/model_card.json, assets/config.json)
    wsol-export --workdir=runs/demo --output=/tmp/models --model_name=birds --version=3

Signatures: serving_default / image_bytes (encoded images) and image_tensor
(uint8 [B, H, W, 3]) -> classes, scores, boxes, heatmaps.
"""

from absl import flags

from wsol_keras import cli
from wsol_keras import cli_flags
from wsol_keras.training import workdir_lock
from wsol_keras.export import inference
from wsol_keras.export import saved_model_lib

FLAGS = flags.FLAGS


define_flags = cli_flags.export_flags


def main(argv):
    del argv
    with workdir_lock.directory_lock(FLAGS.output, "wsol-export"):
        path = saved_model_lib.export_saved_model(
            FLAGS.workdir,
            FLAGS.output,
            model_name=FLAGS.model_name,
            version=FLAGS.version,
            top_k=FLAGS.top_k,
            heatmap_size=FLAGS.heatmap_size,
            overwrite=FLAGS.overwrite,
            max_image_pixels=FLAGS.max_image_pixels,
        )
    card = saved_model_lib.read_model_card(path)
    print(
        f"exported {path} (signatures serving_default, image_bytes, image_tensor; "
        f"cam_threshold={card['cam_threshold']:.3f} from "
        f"{card['cam_threshold_source']})"
    )


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-export")


if __name__ == "__main__":
    run_main()
