"""The runtime: executes a plan on a model and produces evidence and a verdict for each claim.

Only this package imports torch and transformers, and it does so in its submodules, never here:
importing ``unlearnspec.runtime`` stays cheap so that the CLI can start fast and say what it will do.
"""

import logging as _logging
import os as _os

# Intel MKL's conditions for run-to-run reproducible floating point: a fixed thread count (the engine
# pins it) and no dynamic change of it at run time, and one code path whatever the memory alignment.
# Set before torch loads MKL; a value the user already set wins.
for _name, _value in (("MKL_DYNAMIC", "FALSE"), ("OMP_DYNAMIC", "FALSE"), ("MKL_CBWR", "AUTO")):
    _os.environ.setdefault(_name, _value)

# transformers imports torchao (the `quant` extra) whenever it is installed; torchao then logs, at import,
# that its optional CUDA/MX kernels were not built for this interpreter and torch that torchao registers
# enums the old way. Neither concerns a run (the quantization attack says which backend it used), and a
# `--quiet` run prints nothing but its verdict: keep those two loggers to errors.
for _logger in ("torchao", "torch.utils._pytree"):
    _logging.getLogger(_logger).setLevel(_logging.ERROR)
