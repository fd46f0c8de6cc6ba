"""The language server behind `unlearnspec lsp`: the compiler's diagnostics, hover, completion,
formatting and fixes in the editor, over stdio, built on pygls.

``compiler_api`` is the only module here that imports the compiler; ``document`` holds one open
spec (its text, its folder, positions) and lists the files around it; ``links`` follows a chain's
`after` links to the objectives they continue, in this file or another; ``features`` turns what the
compiler returns into LSP answers (plain functions, tested in-process); ``server`` wires them to pygls
(checks debounced and run in a worker thread).
Nothing here imports torch.
"""
