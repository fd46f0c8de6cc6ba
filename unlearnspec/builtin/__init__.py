"""The built-in demo: a synthetic corpus and the recipe of the tiny model trained on it.

``builtin:tiny-bios`` lets every feature run on a laptop CPU with no download. This package holds
only the *description* of that model: the corpus (:mod:`unlearnspec.builtin.corpus`) and the
training recipe (:mod:`unlearnspec.builtin.recipe`). Both are pure Python so that the compiler can
hash them without importing torch; the runtime trains the model in
:mod:`unlearnspec.runtime.builtin_model`.
"""

from __future__ import annotations

BUILTIN_MODEL_NAME = "builtin:tiny-bios"

__all__ = ["BUILTIN_MODEL_NAME"]
