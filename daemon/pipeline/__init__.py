"""The stages, one module each: sync, classify, decide, writeback (and revert).

Each stage reads what is pending from the store, commits its results in batches, and
records its run; any stage can be killed at any moment and resumes where it stopped.
"""
