"""A tiny randomly initialised wav2vec2 saved like a downloaded model, for offline tests."""

from __future__ import annotations

from pathlib import Path

HIDDEN = 32


def save_tiny_model(where: Path, sampling_rate: int = 16000) -> Path:
    """A 2-layer wav2vec2 (hidden size 32, fixed seed) and its feature extractor in `where`."""
    import torch
    import transformers

    config = transformers.Wav2Vec2Config(
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        # wav2vec2's own feature encoder shape (320× fewer frames than samples), narrower
        conv_dim=(32,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(where)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=sampling_rate).save_pretrained(where)
    return where
