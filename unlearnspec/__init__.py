"""unlearnspec: write machine-unlearning objectives down, check them against what unlearning can do,
and lower them to plans a runtime executes to produce evidence for every claim."""

__version__ = "0.1.0"
