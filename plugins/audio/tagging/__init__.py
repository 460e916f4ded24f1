"""Pretrained ONNX audio taggers (musicnn and others), driven by spec files.

`spec` (specs, the shipped catalogue; no heavy imports), `fetch` (downloading a listed
model), `logmel` (samples → patches), `model` (`OnnxTagger`: patches → clip tags; needs
onnxruntime and librosa: genred[audio]), `meaning` (tags → genres, moods, labels).
"""
