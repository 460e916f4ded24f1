"""The audio integration: decoding, features and classifiers that listen to the files.

- Decoding: `decode.py` (libsndfile, PyAV fallback; librosa.load-identical), `excerpts.py`
  (which parts of a track), `containers.py` (what the bytes say).
- Extractors (`plugins.extractors.*`): `handcrafted_extractor.py` (`handcrafted`: FMA's
  518 features, `handcrafted.py`, `spectral.py`, `tuning.py`, `compiled.py`) and
  `embedding_extractor.py` (`embedding`: a transformers encoder, MERT by default).
- Classifiers (`plugins.classifiers.*`): `tagger_classifier.py` (`tagger`: pretrained
  ONNX taggers, `tagging/`) and `model_classifier.py` (`audio-model`: the head
  `genred train` fitted on stored features).
- `commands.py`: `genred models list|fetch` (tagger models).

Config: each plugin's section under `plugins:`, plus the top-level `extract:` (workers,
timeout) and `train:`. Extras: `genred[audio]` (decoding, features, the tagger) and
`genred[ml]` (torch and transformers for `embedding` and `audio-model`).
"""
