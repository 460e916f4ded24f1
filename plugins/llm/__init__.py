"""The LLM integration: chat providers and the classifiers that ask them.

Providers (`plugins.llm.*`, the `LLMPlugin` contract): `groq_llm.GroqLLM` (`groq`) and
`openai_llm.OpenAILLM` (`openai`: OpenAI or any compatible server), both on
`provider.ChatCompletionsLLM` (one request with retries), `chat.py` (output modes,
validated JSON, asking again), `limits.py` (rate budgets per model) and `processors.py`
(LLM processors applied to what is sent and received).

Classifiers (`plugins.classifiers.*`): `metadata.py` (`llm-metadata`, genres from
metadata) and `labels.py` (`llm-labels`, the user's own labels from prompt presets,
`presets.py`), sharing `prompt.py` (what is asked), `asking.py` (packing, splitting,
caching) and `cache.py` (the store's `llm_cache`). `commands.py`: `genred presets …`.

Config: each plugin's section under `plugins:` (model, key as `${GROQ_API_KEY}`, limits,
retries, processors) and the top-level `presets_dir`. Extra: `genred[llm]`.
"""
