"""The grammar of `.unlearn` files (unlearn.lark)."""
