r"""Cost of the per-epoch val localization pass next to a training epoch.

Issue 13 item 5: `config.train.val_localization_every` defaults to 1 (as
wsolevaluation's main.py, which scores val after every epoch). This script
times, for a config, one training epoch (`model.fit`, the config's steps) and
one `val_localization.ValLocalization.evaluate` pass over the val split (its
map method, MaxBoxAccV2 at the config's CAM threshold step), each after a
warm-up (tracing) run, and prints their ratio.

    PYTHONPATH=$PWD python bench/val_localization_cost.py                       # synthetic_dgl (default)
    PYTHONPATH=$PWD python bench/val_localization_cost.py --config=synthetic_cam

The last line is JSON.
"""

import argparse
import importlib
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from wsol_keras import data as data_lib  # noqa: E402
from wsol_keras.training import trainer as train  # noqa: E402
from wsol_keras.training import checkpoint_selection as val_localization  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic_dgl")
    args = parser.parse_args()
    config = importlib.import_module(f"wsol_keras.configs.{args.config}").get_config()
    source = data_lib.get_source(config.data)
    steps = source.num_examples("train") // config.train.batch_size
    model = train.build_compiled_model(config, train.data_info_of(source, config), steps)
    dataset = train.make_train_dataset(source, config, config.train.batch_size)
    callback = val_localization.ValLocalization(
        source, config, tempfile.mkdtemp(), val_localization.SelectionState()
    )
    callback.set_model(model)
    times = {}
    for run in ("warmup", "timed"):
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        times[f"{run}_epoch_s"] = time.perf_counter() - start
        start = time.perf_counter()
        score = callback.evaluate(1)
        times[f"{run}_val_pass_s"] = time.perf_counter() - start
    callback.on_train_end()
    print(
        json.dumps(
            {
                "config": args.config,
                "map_method": config.eval.map_method,
                "train_steps": steps,
                "batch_size": config.train.batch_size,
                "val_images": source.num_examples("val"),
                "cam_threshold_step": config.eval.cam_threshold_step,
                "score": round(score, 2),
                **{k: round(v, 2) for k, v in times.items()},
                "val_pass_over_epoch": round(
                    times["timed_val_pass_s"] / times["timed_epoch_s"], 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
