"""Evaluation of an unlearned model: likelihood and output metrics, membership inference, probes.

Layout: :mod:`.likelihood` (one batched forward pass → :class:`TokenScores`), :mod:`.generation`
(batched greedy decoding), :mod:`.metrics` (ROUGE-L, VerbMem, knowledge QA, extraction strength,
truth ratio, forget quality, utility), :mod:`.mia` (AUC of LOSS / zlib / Min-K% / Min-K%++,
PrivLeak), :mod:`.probes` (paraphrased, adversarial and in-context prompt sets) and
:mod:`.representation` (linear probes on hidden states). Definitions follow FRAMEWORK.md §5.
"""

from unlearnspec.runtime.evaluation.generation import generate, generate_ids
from unlearnspec.runtime.evaluation.likelihood import TokenScores, record_texts, score_records, score_texts
from unlearnspec.runtime.evaluation.metrics import (
    AnswerStatistics,
    ForgetQuality,
    QAResult,
    RougeL,
    UtilityResult,
    VerbatimResult,
    answer_probes,
    answer_statistics,
    extraction_strength,
    forget_quality,
    forget_quality_from,
    knowledge_qa,
    rouge_l,
    truth_ratio,
    utility,
    utility_drop,
    verbatim_memorisation,
)
from unlearnspec.runtime.evaluation.mia import MIAResult, auc, membership_inference
from unlearnspec.runtime.evaluation.probes import (
    ADVERSARIAL_TEMPLATES,
    AdversarialTemplate,
    ProbeSet,
    adversarial_prompts,
    direct_prompts,
    in_context_prompts,
    paraphrased_prompts,
    probe_set,
)
from unlearnspec.runtime.evaluation.representation import ProbeResult, hidden_features, representation_probe

__all__ = [
    "ADVERSARIAL_TEMPLATES", "AdversarialTemplate", "AnswerStatistics", "ForgetQuality", "MIAResult",
    "ProbeResult", "ProbeSet", "QAResult", "RougeL", "TokenScores", "UtilityResult", "VerbatimResult",
    "adversarial_prompts", "answer_probes", "answer_statistics", "auc", "direct_prompts", "extraction_strength",
    "forget_quality", "forget_quality_from", "generate", "generate_ids", "hidden_features", "in_context_prompts",
    "knowledge_qa", "membership_inference", "paraphrased_prompts", "probe_set", "record_texts",
    "representation_probe", "rouge_l", "score_records", "score_texts", "truth_ratio", "utility", "utility_drop",
    "verbatim_memorisation",
]
