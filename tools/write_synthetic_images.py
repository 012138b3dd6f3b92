"""Writes a split of the synthetic benchmark as PNG files, to try wsol-predict on.

Usage:
  PYTHONPATH=. python tools/write_synthetic_images.py --output=runs/synthetic_images \
      [--config=configs/synthetic_cam.py] [--split=test] [--num=N]

Each image is written at <output>/<image_id> (PNG bytes; the synthetic ids have
no extension, e.g. synthetic/test/000000) and listed in <output>/list.txt, so
`wsol-predict --images=<output>/list.txt` writes score maps under the data
source's own ids and `wsol-score` can score them.

`--layout=folders` writes a folder of your own kind instead, one folder per
class with the boxes in localization.txt (what `--config.data.name=folder`
reads): <output>/<class name>/<n>.png and <output>/localization.txt
(`<class name>/<n>.png,x0,y0,x1,y1`).
"""

import argparse
import importlib.util
import os

import cv2

from wsol_keras import data as data_lib
def load_config(path):
    from wsol_keras.config_flag import resolve_config  # a name or a path

    name, _, arg = resolve_config(path).partition(":")
    spec = importlib.util.spec_from_file_location("experiment_config", name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg or None)


def write_images(data_config, output, split="test", num=None):
    """Returns the list of written image ids."""
    source = data_lib.get_source(data_config)
    arrays = source.arrays(split)
    ids = []
    for image, image_id in list(zip(arrays["image"], arrays["image_id"]))[:num]:
        path = os.path.join(output, image_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ok, png = cv2.imencode(".png", image[..., ::-1])
        assert ok, path
        with open(path, "wb") as f:
            f.write(png.tobytes())
        ids.append(str(image_id))
    with open(os.path.join(output, "list.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    return ids


def write_class_folders(data_config, output, split="train", num=None):
    """<output>/<class>/<n>.png + localization.txt; returns the image count."""
    source = data_lib.get_source(data_config)
    arrays = source.arrays(split)
    lines = []
    rows = list(zip(arrays["image"], arrays["label"], arrays["box"]))
    for n, (image, label, box) in enumerate(rows[:num]):
        rel = f"{source.class_names[int(label)]}/{n:06d}.png"
        path = os.path.join(output, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        assert cv2.imwrite(path, image[..., ::-1]), path
        lines.append(rel + "," + ",".join(f"{v:.2f}" for v in box))
    with open(os.path.join(output, "localization.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(rows[:num])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="configs/synthetic_cam.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num", type=int, default=None)
    parser.add_argument("--layout", choices=("ids", "folders"), default="ids")
    args = parser.parse_args()
    if args.layout == "folders":
        n = write_class_folders(load_config(args.config).data, args.output, args.split, args.num)
        print(f"{n} images in {args.output}/<class>/ (boxes: {args.output}/localization.txt)")
        return
    ids = write_images(load_config(args.config).data, args.output, args.split, args.num)
    print(f"{len(ids)} images in {args.output} (list: {args.output}/list.txt)")


if __name__ == "__main__":
    main()
