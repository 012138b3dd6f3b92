r"""Cost and effect of the SavedModel request checks (issue 11).

    PYTHONPATH=. python bench/serving_request_checks.py [--repeats=30]

A small_cnn CAM model (random weights, 64 px input) is exported twice (the
default pixel limit, and max_image_pixels=10**12, i.e. no limit) and each
version is loaded in its own child process, which reports:

    * image_bytes latency (median of --repeats calls, ms) of a 480 x 640
      JPEG at batch 1 and batch 8, with the header checks (the exported
      signature) and without them (the same module's decode -> resize ->
      serve path as a tf.function with no checks);
    * peak resident memory added by one request holding a real 1.2 MB PNG
      of 20000 x 20000 (ru_maxrss before / after), its wall time and the
      outcome (rejected from the header, or decoded).

The last line printed is one JSON object.
"""

import json
import os
import subprocess
import sys
import tempfile
import zlib

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed calls per latency figure.")
flags.DEFINE_integer("bomb_side", 20000, "Side of the square PNG bomb.")

CHILD = r"""
import json, resource, statistics, sys, time
import numpy as np
import tensorflow as tf
path, bomb_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
loaded = tf.saved_model.load(path)
sig = loaded.signatures["image_bytes"]
rng = np.random.default_rng(0)
photo = tf.io.encode_jpeg(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), quality=90).numpy()
report = {}

def median_ms(fn, arg):
    fn(arg)
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(arg); times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 2)

for b in (1, 8):
    batch = tf.constant([photo] * b)
    report[f"checked_batch{b}_ms"] = median_ms(lambda x: sig(images=x), batch)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
bomb = open(bomb_path, "rb").read()
t = time.perf_counter()
try:
    sig(images=tf.constant([bomb]))
    outcome = "decoded"
except tf.errors.InvalidArgumentError as e:
    outcome = "rejected: " + [l for l in e.message.splitlines() if "images[" in l][0][:160]
report["bomb_s"] = round(time.perf_counter() - t, 3)
report["bomb_peak_rss_added_mb"] = round(
    (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1)
report["bomb_outcome"] = outcome
print(json.dumps(report))
"""

UNCHECKED = r"""
import json, statistics, sys, time
import numpy as np
import tensorflow as tf
sys.path.insert(0, sys.argv[1])
from wsol_keras.training import trainer
from wsol_keras.configs import base as config_base
from wsol_keras.data.pipeline import resize_image
from wsol_keras.export import inference
repeats = int(sys.argv[2])
config = config_base.make_smoke(config_base.base_config())
config.method.name = "cam"
config.data.image_size = 64
model = trainer.build_compiled_model(config, {"num_classes": 8, "image_size": 64})
module = inference.InferenceModule(model, config, 0.5)

@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def unchecked(encoded):
    def one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return resize_image(image, 64), tf.shape(image)[:2]
    resized, hw = tf.map_fn(one, encoded, fn_output_signature=(
        tf.TensorSpec([64, 64, 3], tf.uint8), tf.TensorSpec([2], tf.int32)))
    return module.serve(resized, hw)

rng = np.random.default_rng(0)
photo = tf.io.encode_jpeg(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), quality=90).numpy()
report = {}
for b in (1, 8):
    batch = tf.constant([photo] * b)
    for name, fn in (("checked", module.image_bytes), ("unchecked", unchecked)):
        fn(batch)
        times = []
        for _ in range(repeats):
            t = time.perf_counter(); fn(batch); times.append(time.perf_counter() - t)
        report[f"inmemory_{name}_batch{b}_ms"] = round(1000 * statistics.median(times), 2)
print(json.dumps(report))
"""


def write_png_bomb(path, side):
    """A real RGB PNG of side x side black pixels (zlib-streamed, ~1 MB)."""
    import struct

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    parts = [comp.compress(row) for _ in range(side)] + [comp.flush()]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", b"".join(parts)))
        f.write(chunk(b"IEND", b""))
    return os.path.getsize(path)


def main(argv):
    del argv
    import keras

    from wsol_keras.training import trainer
    from wsol_keras.configs import base as config_base
    from wsol_keras.export import saved_model_lib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tempfile.mkdtemp(prefix="serving_checks_")
    config = config_base.make_smoke(config_base.base_config())
    config.method.name = "cam"
    config.data.image_size = 64
    data_info = {"num_classes": 8, "class_names": [str(i) for i in range(8)],
                 "image_size": 64}
    keras.utils.set_random_seed(0)
    model = trainer.build_compiled_model(config, data_info)
    paths = {}
    for name, limit in (("default_limit", None), ("no_limit", 10**12)):
        kw = {} if limit is None else {"max_image_pixels": limit}
        paths[name] = saved_model_lib.export_model(
            model, config, data_info, tmp, model_name=name, version=1,
            cam_threshold=0.5, **kw)
    bomb = os.path.join(tmp, "bomb.png")
    result = {"bomb_png_bytes": write_png_bomb(bomb, FLAGS.bomb_side),
              "bomb_side": FLAGS.bomb_side}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for name, path in paths.items():
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, path, bomb, str(FLAGS.repeats)],
            capture_output=True, text=True, env=env, check=True)
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update({f"{name}/{k}": v for k, v in child.items()})
        print(name, child, flush=True)
    proc = subprocess.run(
        [sys.executable, "-c", UNCHECKED, root, str(FLAGS.repeats)],
        capture_output=True, text=True, env=env, check=True)
    result.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
