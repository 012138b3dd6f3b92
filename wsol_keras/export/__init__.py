"""Export, the TF Model Garden way: one inference graph, several artifacts.

* `inference`: decode, the data pipeline's resize, the model, the evaluator's
  map (`wsol_keras.localization.maps`) and the in-graph box; the ``image_bytes`` /
  ``image_tensor`` signatures and the fixed-size TFLite signature;
* `saved_model_lib`: the versioned, atomic TF Serving SavedModel + model card;
* `tflite_lib`: the TFLite variants, the LiteRT runner, host post-processing;
* `export_saved_model`, `export_tflite`: the thin CLIs (``wsol-export``,
  ``wsol-export-tflite``);
* ``serving/``: a TF Serving ``models.config`` and a REST / gRPC client.
"""
