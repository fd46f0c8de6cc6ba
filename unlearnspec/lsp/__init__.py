"""The language server behind `unlearnspec lsp`: the compiler's diagnostics, hover, completion,
formatting and fixes in the editor, over stdio, built on pygls.

``compiler_api`` is the only module here that imports the compiler; ``document`` holds one open
spec (its text, its folder, positions) and lists the files around it; ``features`` turns what the
compiler returns into LSP answers (plain functions, tested in-process); ``server`` wires them to pygls.
Nothing here imports torch.
"""
