"""A tiny randomly initialised wav2vec2 saved like a downloaded model, for offline tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------- Flamingo

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SOUND, SOUND_BOS, SOUND_EOS = "<sound>", "<|sound_bos|>", "<|sound_eos|>"
# a few words a genre answer uses, so the byte-level BPE learns some merges
CORPUS = [
    "system user assistant You are a music expert. Answer with JSON only.",
    '{"genres": [{"name": "Jazz", "confidence": 0.9}], "moods": [], "caption": "A song."}',
    "Rock Pop Jazz Blues Classical Electronic Folk Country Hip-Hop Metal Ambient",
]
# Qwen-style, like the checkpoints' own: one <sound> per message that has audio
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% set audio = namespace(v=False) %}{% set text = namespace(v='') %}"
    "{% for c in m['content'] %}"
    "{% if c.get('type') == 'audio' %}{% set audio.v = True %}"
    "{% elif c.get('type') == 'text' %}{% set text.v = text.v + c['text'] %}{% endif %}"
    "{% endfor %}"
    "{% if audio.v %}<sound>{% endif %}{{ text.v }}"
    "{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_tiny_flamingo(where: Path, kind: str = "mf", seed: int = 0) -> Path:
    """A randomly initialised Music Flamingo (`mf`) or Audio Flamingo 3 (`af3`) of ~69k
    parameters with its processor (Whisper features at 16 kHz, a byte-level BPE that
    encodes any text), saved as a hub checkpoint is: config.json names the class."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = [PAD, IM_START, IM_END, SOUND, SOUND_BOS, SOUND_EOS]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS * 4, trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=PAD,
        eos_token=IM_END,
        padding_side="left",
        model_max_length=32768,
        extra_special_tokens={"audio_token": SOUND},
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    features = transformers.WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
    audio = {
        "model_type": "audioflamingo3_encoder",
        "num_mel_bins": 128,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_source_positions": 1500,  # 3000 mel frames / 2: forward adds them unsliced
    }
    text = {
        "model_type": "qwen2",
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": False,
        "pad_token_id": ids[PAD],
        "eos_token_id": ids[IM_END],
    }
    torch.manual_seed(seed)
    common = {"audio_config": audio, "text_config": text, "audio_token_id": ids[SOUND]}
    if kind == "mf":
        config = transformers.MusicFlamingoConfig(
            **common,
            audio_bos_token_id=ids[SOUND_BOS],
            audio_eos_token_id=ids[SOUND_EOS],
            rope_parameters={"rope_type": "default", "rope_theta": 1200},
        )
        model = transformers.MusicFlamingoForConditionalGeneration(config)
        processor: Any = transformers.MusicFlamingoProcessor(
            feature_extractor=features, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
        )
    else:
        model = transformers.AudioFlamingo3ForConditionalGeneration(
            transformers.AudioFlamingo3Config(**common)
        )
        processor = transformers.AudioFlamingo3Processor(
            feature_extractor=features, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
        )
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=ids[IM_END], pad_token_id=ids[PAD], do_sample=False
    )
    model.save_pretrained(where)
    processor.save_pretrained(where)
    return where
