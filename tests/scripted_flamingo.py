"""An `audio-llm` classifier whose model's replies are scripted, importable by worker
processes and Ray's model workers (the script travels with the plugin, pickled).

Each reply names the genres the track's hint proposed (the earlier steps' candidates) or
`fallback`: so a test sees that the hint reached wherever the model ran.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from genred_plugins.audio.flamingo.classifier import AudioLLMClassifier
from genred_plugins.audio.flamingo.listening import Listening


class ScriptedAudioLLM(AudioLLMClassifier):
    fallback = ("Jazz",)
    load_log: str | None = None  # each process that loads the model adds its pid here

    def load(self) -> None:
        if self._model is None and self.load_log:
            with open(self.load_log, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()}\n")
        super().load()

    def generation_extras(self, listenings: Sequence[Listening], attempt: int) -> dict[str, Any]:
        import torch
        import transformers

        tokenizer = self._model.tokenizer
        texts = [
            json.dumps(
                {
                    "genres": list(x.hint or self.fallback),
                    "moods": [],
                    "caption": f"{x.name}: {x.seconds:g} s heard",
                }
            )
            for x in listenings
        ]
        scripts = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

        class Forced(transformers.LogitsProcessor):
            start: int | None = None

            def __call__(self, input_ids: Any, scores: Any) -> Any:
                if self.start is None:
                    self.start = input_ids.shape[1]
                step = input_ids.shape[1] - self.start
                forced = torch.full_like(scores, float("-inf"))
                for row, script in enumerate(scripts):
                    forced[row, script[step] if step < len(script) else eos] = 0.0
                return forced

        return {"logits_processor": transformers.LogitsProcessorList([Forced()])}
