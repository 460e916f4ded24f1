"""The Ray integration: genred's file work (extraction, the tagger, audio-llm) on a Ray cluster.

`executor.py` is the executor plugin `ray` (group ``genred.executors``), chosen with
`extract.executor: ray`; `driver.py` is the Ray driver, run in a child process of genred
(`ray.init` would take over the daemon's SIGTERM handler); `remote.py` is what Ray's
workers run. Settings: `plugins.executors.ray` (`address`: none for an instance of
genred's own, `auto`, or a `ray://` URL; CPUs per file, model workers and their GPUs,
retries). Extra: `genred[ray]`; every node of a cluster needs genred installed too.
"""
