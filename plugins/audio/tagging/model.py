"""An ONNX audio tagger driven by its spec: samples in, clip-level tag probabilities out.

`OnnxTagger` checks the model file (checksum, tensor names and shapes, the tag list it
carries) when it is built, so a damaged or mismatched model is refused with the reason
before any track is tried. `tag` follows the spec: the patch grid, silent patches
skipped, log-mel per patch, inference in batches (batching does not change results: the
networks run in inference mode, patch by patch), and the clip value is the mean of the
per-patch probabilities (and embeddings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .logmel import cut_patches, frame_count, loudness_dbfs, patch_starts
from .spec import LoadedSpec, ModelSpecError, file_sha256

SILENCE_DBFS = -60.0  # a patch quieter than this (RMS) is silence, not music


@dataclass(frozen=True)
class ClipTags:
    probs: np.ndarray  # [n_tags]: mean over the analysed patches
    embedding: np.ndarray | None  # [dims]: mean over the analysed patches
    patches: int


class OnnxTagger:
    """One loaded tagger model. Not thread-safe to reconfigure; `tag` may be called freely."""

    def __init__(self, loaded: LoadedSpec, data_dir: Path | None = None, threads: int = 1) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.tags = loaded.tags(data_dir)
        path = loaded.require(self.spec.model, data_dir)
        if self.spec.model.sha256 and file_sha256(path) != self.spec.model.sha256:
            raise ModelSpecError(
                f"model {loaded.name!r}: {path} does not match the sha256 in {loaded.path} "
                "(damaged or replaced): "
                + (
                    f"run `genred models fetch {loaded.name}` again"
                    if self.spec.model.url
                    else "reinstall genred"
                )
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelSpecError(
                f"model {loaded.name!r}: {path} is not a usable ONNX model: {exc}"
            ) from None
        self._check_interface(path)
        self.outputs = [self.spec.onnx.tags_output]
        if self.spec.onnx.embedding_output:
            self.outputs.append(self.spec.onnx.embedding_output)

    def _check_interface(self, path: Path) -> None:
        io = self.spec.onnx
        name = self.loaded.name
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if io.input not in inputs:
            raise ModelSpecError(
                f"model {name!r}: {path} has no input {io.input!r} (it has {sorted(inputs)})"
            )
        for wanted in filter(None, (io.tags_output, io.embedding_output)):
            if wanted not in outputs:
                raise ModelSpecError(
                    f"model {name!r}: {path} has no output {wanted!r} (it has {sorted(outputs)})"
                )
        frames, mels = self.spec.patch.frames, self.spec.mel.n_mels
        expected = [frames, mels] if io.layout == "time_mel" else [mels, frames]
        shape = list(inputs[io.input].shape)
        if len(shape) != 3 or any(
            isinstance(dim, int) and dim != want
            for dim, want in zip(shape[1:], expected, strict=True)
        ):
            raise ModelSpecError(
                f"model {name!r}: input {io.input!r} has shape {shape}, the spec gives "
                f"[batch, {expected[0]}, {expected[1]}]"
            )
        width = outputs[io.tags_output].shape[-1]
        if isinstance(width, int) and width != len(self.tags):
            raise ModelSpecError(
                f"model {name!r}: output {io.tags_output!r} has {width} values but the tag list "
                f"has {len(self.tags)}"
            )
        carried = self.session.get_modelmeta().custom_metadata_map.get("tags")
        if carried is not None:
            try:
                same = json.loads(carried) == self.tags
            except ValueError:
                same = False
            if not same:
                raise ModelSpecError(
                    f"model {name!r}: the tag list inside {path} differs from "
                    f"{self.spec.tags_file.file}"
                )

    def predict(self, patches: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-patch tag probabilities [n, tags] and embeddings [n, dims] (or None)."""
        probs, embeds = [], []
        for i in range(0, len(patches), max(1, batch)):
            result = self.session.run(self.outputs, {self.spec.onnx.input: patches[i : i + batch]})
            probs.append(result[0])
            if len(result) > 1:
                embeds.append(result[1])
        tag_probs = np.concatenate(probs).astype(np.float32, copy=False)
        if self.spec.onnx.tags_are == "logits":
            tag_probs = (1.0 / (1.0 + np.exp(-tag_probs))).astype(np.float32)
        return tag_probs, (np.concatenate(embeds) if embeds else None)

    def choose_patches(self, samples: np.ndarray, min_dbfs: float | None) -> list[int]:
        """Start frames of the patches `tag` analyses (empty: too short, or silent)."""
        spec = self.spec
        starts = patch_starts(
            frame_count(len(samples), spec.mel), spec.patch.frames, spec.patch.hop
        )
        if min_dbfs is None:
            return starts
        return [s for s in starts if loudness_dbfs(samples, s, spec) >= min_dbfs]

    def tag(
        self,
        samples: np.ndarray,
        *,
        min_dbfs: float | None = SILENCE_DBFS,
        batch_patches: int = 1,
    ) -> ClipTags | None:
        """Clip-level tags of mono samples at the spec's sample rate; None when no patch is
        analysed (shorter than one patch, or silent). `min_dbfs` None keeps silent patches."""
        samples = np.asarray(samples, dtype=np.float32)
        starts = self.choose_patches(samples, min_dbfs)
        if not starts:
            return None
        probs, embeds = self.predict(cut_patches(samples, starts, self.spec), batch_patches)
        embedding = embeds.mean(axis=0) if embeds is not None else None
        return ClipTags(probs.mean(axis=0), embedding, len(starts))
