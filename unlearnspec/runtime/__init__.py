"""The runtime: executes a plan on a model and produces evidence and a verdict for each claim.

Only this package imports torch and transformers, and it does so in its submodules, never here:
importing ``unlearnspec.runtime`` stays cheap so that the CLI can start fast and say what it will do.
"""
