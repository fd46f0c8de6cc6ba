"""Records that outlive a run: the request ledger, report signatures and the model-card section.

Light package (pydantic, jinja2, the standard library, and ``cryptography`` for signatures only): the
verbs built on it (`ledger`, `keygen`, `sign`, `verify`, `card`) never import torch.
"""
