"""`genred train`: a small classifier (the `audio-model` classifier's head) fitted on stored
feature vectors, with labels from the library itself.

One concern per module: `labels` (which label each track teaches, in order of trust),
`split` (the held-out split, by album or artist), `dataset` (reading features, labels
and album keys from the store), `model` (the torch network, its fitting and temperature
scaling; torch is imported only there, inside functions), `metrics` (accuracy, macro-F1,
confusion matrix, calibration error), `card` (what is stored with a model), `registry`
(model versions in the data dir) and `train` (the whole run, start to finish).
"""
