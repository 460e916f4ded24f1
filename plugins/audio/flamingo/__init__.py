"""The `audio-llm` classifier: an audio-language model (Music Flamingo, on the Audio
Flamingo 3 architecture) listens to a track and answers genres, moods and a caption.

`classifier.py` (the plugin, its settings and the cascade rule), `listening.py` (what
the model hears: 16 kHz excerpts or the whole track up to the model's limit, decoded in a
worker), `model.py` (loading the checkpoint by its explicit class, batched generation,
out-of-memory halving), `answers.py` (the question, and reading the JSON reply).
Settings: `plugins.classifiers.audio-llm`; extras `genred[audio,flamingo]`. Licence:
the NVIDIA checkpoints are non-commercial research only; no weights ship with genred.
"""
