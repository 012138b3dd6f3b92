"""bench/mechanism_diagnostics.py on a tiny untrained ACoL workdir: the JSON
line's keys, value ranges, and figures recomputed here in numpy."""

import json
import os

import keras
import numpy as np
import pytest

from file_modules import load_module
from wsol_keras import data as data_lib
from wsol_keras.configs import base as config_base
from wsol_keras.models.registry import default_method_config
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "bench", "mechanism_diagnostics.py")
N = 6  # val images diagnosed


@pytest.fixture(scope="module")
def bench():
    return load_module("mechanism_diagnostics", SCRIPT)


@pytest.fixture(scope="module")
def acol_workdir(tmp_path_factory):
    """config.json + random weights of a tiny ACoL model (as wsol-train writes)."""
    config = config_base.make_smoke(config_base.base_config())
    config.method = default_method_config("acol")
    config.method.conv_filters = (16,)
    config.data.image_size = 32
    config.data.synthetic.num_val = N
    keras.utils.set_random_seed(0)
    source = data_lib.get_source(config.data)
    info = trainer.data_info_of(source, config)
    model = trainer.build_compiled_model(config, info)
    path = str(tmp_path_factory.mktemp("diag") / "acol")
    workdir_lib.write_config(path, config, info)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(path))
    return path, model, source


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _pct(x):
    return x is None or 0.0 <= x <= 100.0


def test_acol_part_keys_ranges_and_figures(bench, acol_workdir, capsys):
    path, model, source = acol_workdir
    bench.main([f"--acol={path}", "--split=val", f"--max_images={N}", "--threshold=0.3"])
    out = _last_json(capsys)
    assert set(out) == {"split", "max_images", "threshold", "seconds", "parts"}
    assert list(out["parts"]) == ["acol"]
    acol = out["parts"]["acol"]
    for k in ("b_region_inside_erased", "b_region_erased_iou", "erased_area", "b_region_area"):
        assert _pct(acol[k]), (k, acol[k])
    assert set(acol["coverage"]) == {"fused", "a", "b"}
    for name, cov in [*acol["coverage"].items(), ("evaluated", acol["evaluated_map"])]:
        assert cov["num_images"] == N and cov["threshold"] == 0.3
        for k in ("object_covered", "outside_object", "region_area", "object_area",
                  "mass_inside"):
            assert _pct(cov[k]), (name, k, cov[k])
    # Independently: the object's area from the masks, and the erased area as
    # A's top-1 class map, min-max normalized, >= delta (ACoL Sec. 3.2).
    arrays = source.arrays("val")
    masks = arrays["mask"][:N].astype(bool)
    assert acol["coverage"]["fused"]["object_area"] == pytest.approx(100.0 * masks.mean())
    cams_a = np.asarray(model(arrays["image"][:N].astype("float32"), training=False)["cams_a"])
    top1 = cams_a.mean(axis=(1, 2)).argmax(axis=1)
    a = cams_a[np.arange(N), :, :, top1]
    lo = a.min(axis=(1, 2), keepdims=True)
    norm = (a - lo) / (a.max(axis=(1, 2), keepdims=True) - lo)
    assert acol["erased_area"] == pytest.approx(100.0 * (norm >= 0.6).mean(), abs=1e-4)
    # The fused map is the one ACoL's evaluation scores.
    assert acol["evaluated_map"]["object_covered"] == pytest.approx(
        acol["coverage"]["fused"]["object_covered"])


def test_a_workdir_of_another_method_is_refused_naming_the_flag(bench, acol_workdir):
    path = acol_workdir[0]
    with pytest.raises(ValueError, match=r"--spn=.*trains 'acol'"):
        bench.main([f"--spn={path}", f"--max_images={N}"])
