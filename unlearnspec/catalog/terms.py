"""The general terms a report uses, in words for a reader who is not a statistician.

A report's glossary lists these, then each metric it shows (:data:`~unlearnspec.catalog.METRICS`, summary and
source) and, when it judges membership, each membership attack (:data:`~unlearnspec.catalog.MEMBERSHIP_ATTACKS`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    term: str
    meaning: str
    source: str = ""


TERMS: tuple[Term, ...] = (
    Term("n", "the number of items (questions, documents, prompts or records) a figure rests on; with two "
         "numbers, members and non-members, or the model's items and the reference's"),
    Term("interval", "value [low, high]: the range the figure could plausibly take had other items of the same "
         "kind been tested, at 95% confidence unless the spec says otherwise. Most are bootstrap intervals: the "
         "items are resampled with replacement many times and the middle share of the recomputed figures is kept; "
         "a share of items may instead have an exact binomial (Clopper-Pearson) interval, a mean of very few items "
         "a bound that holds whatever their distribution (Hoeffding), and a figure on which every item agrees a "
         "distribution-free bound; the report names the kind of each. Few items give wide intervals",
         "Efron, Annals of Statistics 7(1), 1979"),
    Term("inconclusive", "the interval reaches both sides of the bound, so the data cannot say whether the "
         "check is met; it is never counted as a pass"),
    Term("forget set", "the records the request asks the model to forget"),
    Term("holdout", "records no model was trained on: the target's own `holdout`, meant to be of the same kind as "
         "the forget set, or for a built-in model without one the built-in corpus's holdout people (biographies, "
         "whatever the target). Membership attacks try to tell the forget set from them; records of another kind "
         "are told apart by their kind alone (Duan et al., arXiv:2402.07841), which is why membership is read as "
         "the gap to the retrained reference on the same items. One half of it (calibration) may set when "
         "training stops; only the other half (evaluation) enters the verdicts"),
    Term("retain set, neighbours", "records the model must keep working on; the neighbours are those most like "
         "the target (people with similar facts), where collateral damage shows first"),
    Term("gap to the reference", "the unlearned model's figure minus the retrained reference's on the same "
         "items: a model never trained on the target still scores something (shared wording, common facts), so "
         "that score, not zero, is what forgetting looks like"),
    Term("over-unlearning", "the unlearned model treats the forget set as less familiar than a model never "
         "trained on it; that difference itself tells an observer the data was there"),
    Term("loss (NLL)", "negative log-likelihood: how surprised the model is by a text, averaged over its tokens; "
         "lower means more familiar"),
    Term("ROUGE-L", "the overlap between a generated text and the true one, from the longest sequence of words "
         "both contain in the same order (after lower-casing and stemming). As F1 (verbatim ROUGE-L), 1 is a "
         "reproduction; as recall (knowledge ROUGE-L), 1 means every word of the true answer appears in order, "
         "whatever else is said; 0 means no such word in common",
         "Lin, ACL Workshop on Text Summarization Branches Out, 2004"),
    Term("AUC", "area under the ROC curve of an attack that scores each item and guesses 'trained on' or not: "
         "0.5 is a coin toss, 1 tells the forget set from the holdout perfectly, and below 0.5 the forget set "
         "looks less familiar than unseen data"),
    Term("truth ratio", "how likely the model finds reworded wrong answers compared with a reworded correct answer "
         "(TOFU's; a record without a reworded answer is compared with its correct answer itself, and the check "
         "says on how many questions each was used): well below 1 the model prefers the truth, near 1 it cannot "
         "tell them apart", "TOFU, arXiv:2401.06121"),
    Term("KS test, p-value", "the Kolmogorov-Smirnov test asks whether two sets of numbers could come from the "
         "same distribution; a small p-value says they differ. Forget quality applies it to the per-item truth "
         "ratios of the unlearned model and of the retrained reference (to per-item losses when the records "
         "have no wrong answers to compare with)", "TOFU, arXiv:2401.06121"),
    Term("simultaneous intervals", "when several intervals decide one check together (membership: every item "
         "type and attack), each is widened so that all of them hold at once with the stated confidence: the "
         "items are resampled once for all of them, and the level of each is raised until that share of the "
         "resamples falls inside every interval together",
         "Mandel & Betensky, Computational Statistics & Data Analysis, 2008"),
)
"""Shown, in this order, at the head of every report's glossary."""
