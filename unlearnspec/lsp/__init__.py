"""The language server behind `unlearnspec lsp`: the compiler's diagnostics, hover, completion,
formatting and fixes in the editor, over stdio, built on pygls.

``compiler_api`` is the only module here that imports the compiler; ``features`` turns what it
returns into LSP answers (plain functions, tested in-process); ``server`` wires them to pygls.
Nothing here imports torch.
"""
