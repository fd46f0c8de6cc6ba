"""The compiler: parse, resolve, feasibility rules, lowering to plans, diagnostics. Never imports torch."""
