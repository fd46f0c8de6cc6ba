"""The process exit codes every verb shares (docs/pipelines.md): 0 fine, 1 a claim failed or findings,
2 the user must fix something (the spec, the command line), 3 the evidence is incomplete."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
