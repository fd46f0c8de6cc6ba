"""The pages of the front end's codes (UL1xx syntax, UL2xx resolve) and of the runtime's (RT1xx models that
cannot be loaded, UL7xx runs that cannot start): `unlearnspec run` prints them like compiler diagnostics."""

from __future__ import annotations

from unlearnspec.catalog.pages import Category, CodePage, Severity

PAGES: list[CodePage] = []


def _front(code: str, name: str, severity: Severity, category: Category, summary: str, why: str,
           example: str = "", instead: str = "") -> None:
    PAGES.append(CodePage(code=code, name=name, severity=severity, category=category, summary=summary, why=why,
                          example=example, instead=instead))


_S: Category = "syntax"
_R: Category = "resolve"
_front("UL100", "not-utf8-text", "error", _S, "The file is not UTF-8 text (binary content or invalid bytes).",
       "A spec is a reviewed text document; anything else is almost always the wrong file.",
       instead="Save the spec as UTF-8 text.")
_front("UL101", "unexpected-character", "error", _S, "A character that cannot start any token.",
       "Values are words, quoted strings, numbers, percentages or comparisons; other characters are mistakes.",
       example='title @"x"', instead='title "x"')
_front("UL102", "unexpected-token", "error", _S,
       "A token where the grammar expects something else (the message says what was expected).",
       "The parser cannot know what the author meant; it says what the language allows at that point.",
       example='objective erase-jane-doe {', instead='objective "erase-jane-doe" {')
_front("UL103", "unexpected-end-of-file", "error", _S, "The file ends inside a block or a field.",
       "Usually a `}` is missing; the diagnostic points at the `{` that is never closed.",
       example='objective "x" {\n  goal removal\n', instead='objective "x" {\n  goal removal\n}')
_front("UL104", "unterminated-string", "error", _S, "A string is not closed before the end of its line.",
       "Strings cannot span lines, so a missing quote is caught where it happens.",
       example='title "Erase Jane Doe', instead='title "Erase Jane Doe"')
_front("UL105", "nesting-too-deep", "error", _S, "Blocks nested deeper than the language ever needs.",
       "Objectives nest two levels at most; deeper nesting is a mistake or hostile input, refused before parsing.")
_front("UL106", "file-too-large", "error", _S, "The spec file is larger than 1 MB.",
       "Specs are short documents; data belongs in data files referred to by path.")
_front("UL107", "missing-header", "warning", _S, "The file does not start with `unlearnspec 1`.",
       "The header names the language version, so that later versions can read old specs unambiguously.",
       example='objective "x" { ... }', instead='unlearnspec 1\n\nobjective "x" { ... }')
_front("UL108", "unsupported-version", "error", _S, "The header names a language version this compiler does not read.",
       "Reading a spec under the wrong language version could silently change its meaning.",
       example="unlearnspec 2", instead="unlearnspec 1")
_front("UL109", "no-objective", "error", _S, "The file is empty or holds no objective.",
       "A spec without an objective asks for nothing, which is almost certainly not what was meant.",
       instead='unlearnspec 1\n\nobjective "erase-jane-doe" { ... }')
_front("UL201", "duplicate-objective", "error", _R, "Two objectives in one file share a name.",
       "Plans, reports and `accept` decisions are keyed by objective name.",
       instead="Give each objective a unique name.")
_front("UL202", "duplicate-field", "error", _R, "A field or claim is given twice.",
       "Two values for one field leave the meaning ambiguous; the compiler will not pick one silently.",
       example="goal removal\ngoal suppression", instead="goal removal")
_front("UL203", "unknown-field", "error", _R, "A field name the block does not have (with a did-you-mean).",
       "Misspelled fields would otherwise be ignored, and a reviewer would believe they apply.",
       example="  retian \"data/retain.jsonl\"", instead='  retain "data/retain.jsonl"')
_front("UL204", "unknown-word", "error", _R,
       "A word outside the closed vocabulary of its field (target category, kind, goal, release, precision, "
       "method, output or prompt kind, claim, metric).",
       "Every word of the language has one documented meaning; the feasibility rules depend on it.",
       example="goal removel", instead="goal removal")
_front("UL205", "value-out-of-range", "error", _R,
       "A number outside its range: percentages 0-100, AUC, ROUGE and p-values in [0, 1], step counts > 0.",
       "A threshold that can never be reached, or always is, makes the claim it supports meaningless.",
       example="membership_auc <= 1.5", instead="membership_auc <= 0.60")
_front("UL206", "missing-field", "error", _R, "A required field (model, target, goal, or forget data) is missing.",
       "Without them the objective does not say what to unlearn from which model.",
       instead='model "builtin:tiny-bios"\ntarget person "Jane Doe" { forget "data/jane-doe.jsonl" }\ngoal removal')
_front("UL207", "path-not-found", "error", _R,
       "A data file or model folder does not exist, is a folder where a file is expected, or cannot be read.",
       "Paths resolve relative to the spec's folder; a plan must hash every input it depends on.",
       example='forget "data/jane.jsonl"', instead='forget "data/jane-doe.jsonl"')
_front("UL208", "malformed-data-file", "error", _R,
       "A data file is not valid JSONL/CSV, or a record lacks `text` and `question`+`answer`.",
       "The runtime trains and evaluates on these records; a malformed line would be lost silently.",
       example='{"text": "Jane Doe was born in', instead='{"text": "Jane Doe was born in Porto."}')
_front("UL209", "contradictory-fields", "error", _R,
       "Fields that contradict each other: a suppression method for a removal goal, a filter inside the model, "
       "the same file both forgotten and retained, `via` on a removal goal.",
       "A contradictory objective cannot be planned without guessing which field the author meant.",
       example="goal removal\nmethod refusal", instead="goal suppression via model\nmethod refusal")
_front("UL210", "wrong-shape", "error", _R, "A field has the wrong kind or number of values, or a missing/extra block.",
       "Each field has one documented shape (see docs/language.md).",
       example="title Jane", instead='title "Erase Jane Doe"')
_front("UL211", "threshold-wrong-way", "error", _R,
       "An evidence threshold bounds a metric in the direction that rewards not unlearning.",
       "`membership_auc >= 0.6` would pass a model that still leaks membership; the bound must point the other way.",
       example="membership_auc >= 0.60", instead="membership_auc <= 0.60")
_front("UL212", "accept-unknown-code", "error", _R, "`accept` names a code that does not exist.",
       "An acceptance that matches no code records a decision about nothing.",
       example='accept UL450 "..."', instead='accept UL405 "..."')
_front("UL213", "accept-error", "error", "feasibility", "`accept` names an error-severity code.",
       "Errors mean the objective cannot be met; no review can accept that. Change the objective instead.",
       example='accept UL301 "we tried our best"',
       instead="Rewrite the objective as the error's help suggests.")
_front("UL214", "accept-unused", "warning", "feasibility", "`accept` names a code that this objective does not trigger.",
       "A stale acceptance hides the moment a risk comes back under another form; remove it.",
       example='accept UL404 "..."  # but retain and neighbour sets are given', instead="Remove the `accept` line.")
_front("UL215", "accept-without-justification", "error", _R, "`accept` has an empty justification.",
       "The plan records who accepted which risk and why; an empty reason is no record.",
       example='accept UL405 ""', instead='accept UL405 "Forget set built from a full-corpus alias search."')

_front("UL216", "chain-unknown-objective", "error", _R,
       "`after` names an objective that does not exist: not in this file, or not in the file named by "
       "`after \"file.unlearn#name\"`.",
       "A request that continues another must say exactly which; a misspelled name would otherwise start "
       "the request from the original model, undoing nothing and re-checking nothing.",
       example='objective "erase-b" {\n  after "erase-jane-do"\n  ...\n}',
       instead='objective "erase-b" {\n  after "erase-jane-doe"\n  ...\n}')
_front("UL217", "chain-cycle", "error", _R, "The `after` links form a cycle.",
       "Requests apply one after another, starting from the original model; a cycle has no first request.",
       example='objective "a" { after "b" ... }\nobjective "b" { after "a" ... }',
       instead='objective "a" { ... }\nobjective "b" { after "a" ... }')
_front("UL218", "chain-fork", "error", _R, "Two objectives continue from the same objective.",
       "A chain is one model receiving requests in order; two requests continuing the same one would make two "
       "different models, and neither would carry both removals.",
       example='objective "b" { after "a" ... }\nobjective "c" { after "a" ... }',
       instead='objective "b" { after "a" ... }\nobjective "c" { after "b" ... }')
_front("UL219", "method-unknown-without-checkpoint", "error", _R,
       "`method unknown` in an objective that names no `unlearned` checkpoint.",
       "`unknown` states that a vendor did not say how the checkpoint under audit was unlearned; without a given "
       "checkpoint the compiler must choose a method to run, and an unknown one cannot be run.",
       example='model "builtin:tiny-bios"\nmethod unknown',
       instead='model     "builtin:tiny-bios"\nunlearned "models/vendor-unlearned"\nmethod    unknown')
_front("UL220", "checkpoint-with-training-fields", "error", _R,
       "An objective that audits a given checkpoint (`unlearned`) also configures training: a method block of "
       "knobs, `method filter`, or a chain (`after`, `budget`); or another objective continues it (`after`).",
       "An audit runs no unlearning: the checkpoint is evaluated as given, so knobs would be recorded and never "
       "applied, a system filter is not part of a checkpoint's weights, and a chain starts from, and hands on, a "
       "model the run produces.",
       example='unlearned "models/vendor-unlearned"\nmethod npo { steps 40 }',
       instead='unlearned "models/vendor-unlearned"\nmethod npo')

_front("UL222", "repeated-records", "warning", _R,
       "The forget set or the holdout gives the same record more than once.",
       "Sample sizes and intervals count items (FRAMEWORK.md §7): a record given twice is counted as two independent "
       "items, so an interval over the set is narrower than the data can show, and a repeated holdout record can fall "
       "in both the calibration and the evaluation half's place of a distinct one. Keep one copy of each record.",
       example='forget "data/jane-doe-twice.jsonl"   # every record given twice',
       instead='forget "data/jane-doe.jsonl"')
_front("UL223", "repeated-list-item", "warning", _R, "A word is listed twice in one list (`outputs`, `prompts`).",
       "The repetition changes nothing (the list is a set), but it is a sign the list was meant to say something "
       "else, such as a kind that is missing; the second mention is dropped.",
       example="outputs verbatim, facts, verbatim", instead="outputs verbatim, facts")
_front("UL221", "system-prompt-without-chat-template", "error", _R,
       "`system` gives a system prompt, but the model's tokenizer has no chat template to put it in.",
       "A system prompt is a turn of a chat template (docs/models.md, prompt formats); a model without one is asked "
       "in the plain `Question: …\\nAnswer:` format, where a system prompt has no place, so the plan would record a "
       "prompt that no question is asked with. The compiler knows the format of the built-in models and of local "
       "folders (their tokenizer files); for a hub id `unlearnspec run` reports the same code before it measures.",
       example='model  "builtin:tiny-bios"\nsystem "You are a careful assistant."',
       instead='model  "builtin:tiny-bios-chat"\nsystem "You are a careful assistant."')


# -- runtime codes: `unlearnspec run` prints them like compiler diagnostics ------------------------
# RT1xx: :class:`unlearnspec.runtime.loading.LoadError` (a model that cannot be loaded);
# UL7xx: :class:`unlearnspec.runtime.engine.RunError` (a run that cannot start or continue).

_T: Category = "runtime"
_front("RT101", "model-not-found", "error", _T,
       "The model folder named in the plan does not exist, or `builtin:` names an unknown builtin model.",
       "The run loads exactly the model the plan hashed; a missing folder is never replaced by a guess.",
       example='model "models/base"  # no such folder beside the spec',
       instead="Give the model folder relative to the spec's folder, or a built-in model (`builtin:tiny-bios`, "
               "`builtin:tiny-bios-chat`, `builtin:bios-100m`).")
_front("RT102", "pickle-weights-refused", "error", _T,
       "A local model folder has no `*.safetensors` weights, only pickle checkpoints (`.bin`, `.pt`, `.ckpt`).",
       "Unpickling a checkpoint can execute arbitrary code, and an unlearning run is often pointed at a model "
       "someone else sent; unlearnspec loads safetensors only instead of trusting the file.",
       instead="Convert the model once in a trusted environment: "
               "`model.save_pretrained(folder, safe_serialization=True)`.")
_front("RT103", "model-unavailable", "error", _T,
       "A hub model cannot be loaded: it is not in the local Hugging Face cache (a run reads only that cache).",
       "A run never downloads: weights fetched at run time could differ from those the plan was reviewed against, "
       "and a run must be repeatable offline. A model that is not in the local cache stops the run with this code "
       "rather than a traceback.",
       instead="Download the model once where a network exists (`hf download ORG/NAME`) and run again, "
               "or name the local folder instead; the model must publish `*.safetensors` weights.")
_front("RT104", "model-needs-remote-code", "error", _T,
       "The model can only be loaded by running Python code shipped in its repository (`trust_remote_code`).",
       "That code would run on this machine with the run's permissions; it is refused unless explicitly allowed.",
       instead="Allow it with `--allow-remote-code` only if you trust the source, or use a model whose "
               "architecture transformers supports natively.")
_front("RT105", "retrain-recipe-unknown", "error", _T,
       "`method retrain` was planned for a model whose training corpus and recipe are unknown.",
       "Exact retraining without the forget set needs the original data and recipe; only the built-in models "
       "(`builtin:tiny-bios`, `builtin:tiny-bios-chat`, `builtin:bios-100m`) ship them, so for any other model "
       "retraining cannot be reproduced.",
       example='model "models/base"\nmethod retrain',
       instead="method npo\n\n# and compare with a reference model, or use a built-in model such as "
               "`builtin:tiny-bios-chat`")
_front("RT107", "disk-space-short", "warning", _T,
       "The disk that will hold the run folder has less free space than the run is estimated to write: the unlearned "
       "model and the training checkpoints a resume restarts from.",
       "A run that fills its disk stops part-way, hours in; it resumes once space is freed, but the time is lost. "
       "The estimate is an upper bound from the plan (the model's parameter count, fp32 weights, Adam's two moments "
       "in each checkpoint, one checkpoint more than are kept while the newest is written), so the run starts "
       "anyway and this is a warning, not a refusal.",
       instead="Free space on that disk, or give `--out` a folder on a disk with more.")
_front("RT106", "bad-model", "error", _T,
       "The model cannot be loaded: the folder has no `config.json`, or transformers rejects its files.",
       "A model that cannot be loaded as a Hugging Face model cannot be trained or evaluated; the message "
       "carries the library's first line of detail.",
       instead="Save the model with `model.save_pretrained(folder)` so that it has `config.json` and "
               "`*.safetensors` weights.")
_front("UL701", "spec-not-found-for-plan", "error", _T,
       "The spec a plan was made from cannot be found, so its relative data paths cannot be resolved.",
       "A plan names its spec and data relative to the spec's folder; without that folder the run cannot "
       "check the inputs' hashes or read the data.",
       instead="Run from the folder the plan was made in, or keep plan.json beside its spec.")
_front("UL702", "stale-plan", "error", _T,
       "The plan's inputs changed since it was made: the spec, a data file, the model's files or the plan "
       "itself do not match the recorded hashes; or the plan's chain of requests does not hold together (a link "
       "that names no objective, does not continue the link before it, or records other hashes than its objective "
       "and the links before it give).",
       "A reviewed plan is a promise about exactly these inputs; running it on other inputs would attach the "
       "review to evidence it never covered.",
       instead="Make a new plan (`unlearnspec plan SPEC -o plan.json`) and review it.")
_front("UL703", "unreadable-plan", "error", _T,
       "The plan file cannot be read: not JSON, not an unlearnspec plan, a newer plan format, or invalid fields; "
       "or it runs nothing (no objectives) or checks no input (no input files).",
       "The runtime runs only plans it fully understands; a partly read plan could skip stages silently.",
       instead="Give a plan.json written by `unlearnspec plan`, or upgrade unlearnspec for a newer plan format.")
_front("UL704", "not-a-run-dir", "error", _T,
       "`--resume DIR` names a folder that is not a run directory (no plan.json / run.json: a start cut short "
       "before its run.json, which the next start with `--out` takes over), one whose run.json is damaged, one "
       "whose run.json and plan.json disagree, one whose run.json names a model in another run folder (a folder "
       "moved or copied by an older version), or one holding a symbolic link, FIFO or device (a run makes none: one "
       "was planted, and following it could write into the source model or read another run's outputs).",
       "Resuming continues exactly the run that was started; an edited run directory cannot be trusted to hold "
       "that run's state.",
       instead="Resume the directory a run created, or start a new run.")
_front("UL705", "nothing-to-run", "error", _T,
       "`unlearnspec run` was given neither a plan, nor a spec, nor `--resume DIR`.",
       "The runtime only runs plans; it has nothing to plan or resume.",
       instead="unlearnspec run plan.json   # or: unlearnspec run SPEC, unlearnspec run --resume DIR")
_front("UL706", "spec-cannot-be-planned", "error", _T,
       "The spec given to `run` has errors, so no plan can be made from it.",
       "A spec whose objective cannot be met would produce evidence for a claim no method can deliver; the "
       "errors are printed above this one. `--allow-infeasible` covers only claims that cannot be met "
       "(UL3xx, UL601); errors in the spec itself (UL1xx syntax, UL2xx names, values and contradictory "
       "fields) must be fixed.",
       instead="Fix the errors, or, where they are only claims that cannot be met, run with `--allow-infeasible` "
               "to measure what is measurable.")
_front("UL707", "run-dir-exists", "error", _T,
       "The run directory already exists and is not empty, or another run is creating or resuming it.",
       "Runs never overwrite earlier evidence; a report must be traceable to exactly one run.",
       instead="Choose another `--out DIR`, or continue that run with `--resume DIR`.")
_front("UL708", "multi-process-needs-out", "error", _T,
       "A run launched as several processes (`WORLD_SIZE` > 1) was given no `--out DIR` or `--resume DIR`.",
       "Every process must write to the same run directory, and the default directory name has a timestamp "
       "that differs between processes.",
       instead="Pass `--out DIR` (or `--resume DIR`) to every process of the launch.")
_front("UL709", "run-dir-unwritable", "error", _T,
       "The run directory cannot be created or written: a path under `/proc`, an existing file, a read-only "
       "place, or a file system that is full (also when it fills up during the run).",
       "A run writes its plan copy, state, checkpoints, models and reports into its directory; when that fails "
       "the run stops with this code (exit 2, never 1, which would mean a claim failed). Every file is written "
       "atomically, so what was finished stays finished: after freeing space the run continues with "
       "`--resume DIR` from its last complete checkpoint.",
       instead="Choose a writable `--out DIR`, or free space and run `unlearnspec run --resume DIR`.")
_front("UL710", "runtime-extra-missing", "error", _T,
       "A runtime verb (`run`, `builtin build`) was called where the runtime extra (torch, transformers, peft, "
       "...) is not installed.",
       "`pip install unlearnspec` installs the compiler only, so that CI jobs that check specs stay small; "
       "running a plan needs the runtime libraries. Nothing is written before the check.",
       instead="pip install 'unlearnspec[runtime]'")
_front("UL711", "plan-not-from-spec", "error", _T,
       "A saved plan differs from the plan the compiler makes of the spec whose sha256 it records.",
       "A plan's hash only proves it was not edited after sealing; anyone can edit a plan (loosen a threshold, "
       "delete a claim, empty the input list) and seal it again. `run` re-derives the plan from its spec and "
       "refuses one that differs; `show` warns. `--trust-plan` runs a plan as given, and the report's audit "
       "trail then says it was not re-derived.",
       instead="Make the plan again with `unlearnspec plan SPEC -o plan.json` and review it, or, for a plan "
               "deliberately edited by hand, run it with `--trust-plan`.")
_front("UL712", "chain-needs-one-process", "error", _T,
       "Retired, no longer raised: a plan with a chain of more than one request was launched as several processes "
       "(`WORLD_SIZE` > 1), which earlier versions refused.",
       "Each step of a chain starts from the model the previous step produced and re-checks the earlier requests "
       "on it; the processes of a launch did not hand each step's model on to one another, so such a chain ran as "
       "one process. They do now: every process runs each step from the model the step before it saved, and the "
       "re-checks are shared out across them, with the results of one process (docs/running.md). The code keeps its "
       "page: codes are public API, never renumbered or given another meaning.",
       instead="Nothing to change: launch a plan with chains like any other, e.g. `accelerate launch -m unlearnspec "
               "run plan.json --out DIR`.")
_front("UL714", "resume-changes-the-run", "error", _T,
       "`--resume DIR` was given something that would change the run it continues: a plan or spec, `--out`, "
       "`--allow-infeasible`, or a ledger (`--ledger DIR`, `--no-ledger`) other than the one the run was started with; "
       "or the environment changed since it started (library versions, threads, processes, device, the original "
       "weights' hash), which would mix results computed two ways; or a step of a chain would continue from other "
       "weights than it started from (the step before it was redone).",
       "A resumed run is the run that was started: its plan, its folder and the ledger its requests are recorded in "
       "are in its `run.json`. Taking another ledger would record one run in two places, or not at all.",
       example="unlearnspec run --resume runs/x --no-ledger   # the run was started with a ledger",
       instead="unlearnspec run --resume runs/x")
_front("UL715", "output-inside-an-input", "error", _T,
       "A run folder, a ledger folder or a plan file would be written inside a folder the plan only reads: the "
       "source model's, a reference model's, an audited checkpoint's, or a data folder; or `card -o` would write "
       "inside the run folder it describes.",
       "A run never changes what it measures (docs/running.md): files written into a model folder become part of "
       "it, so the folder's hash changes, the plan that pins it goes stale, and the report would record a hash "
       "that includes the run's own half-written output.",
       example="unlearnspec run spec.unlearn --out models/llama/run1   # models/llama is the spec's model",
       instead="unlearnspec run spec.unlearn --out runs/run1")
_front("UL720", "batch-not-divisible-by-processes", "error", _T,
       "The plan's global batch (batch size × gradient accumulation) cannot be split evenly across the processes "
       "of the launch.",
       "A plan fixes the examples of every optimizer step, so that one process and several reach the same "
       "verdict: each step's batch is split across the processes (`docs/running.md`, several processes). A "
       "batch of 8 cannot be split across 3 processes without changing what a step averages over.",
       instead="Launch a number of processes that divides the global batch, or plan a batch size that it divides.")
_front("UL713", "chain-across-specs-not-run", "error", _T,
       "The plan's chain continues an objective of another spec (`after \"file.unlearn#name\"`), which the "
       "runtime cannot start from yet.",
       "The compiler checks and plans links across files (the name exists, no cycle, the other spec's hash is "
       "recorded), but the run would have to start from a model another run produced, and it does not yet "
       "take one; starting from the original model instead would run a different chain than the plan says.",
       instead="Put the requests of one chain in one spec file.")


# -- data import codes: `unlearnspec data import` (:mod:`unlearnspec.importers`) --------------------
_I: Category = "data"
_front("UL821", "benchmark-split-not-found", "error", _I,
       "`data import` cannot find a split the benchmark needs in the source folder (or the option names no split "
       "the benchmark has), or cannot tell which copy to read: a Hugging Face cache folder with several snapshots "
       "and no `refs/main`, or a MUSE `raw/SPLIT.txt` whose articles differ from its `.json`.",
       "The importer converts the benchmark as published; a missing split would leave the spec without the data "
       "its evidence is measured on, so nothing is written.",
       example="unlearnspec data import tofu downloads/ --out data/   # no forget10.json in downloads/",
       instead="Point SRC at the folder holding the benchmark's files (`forget10.json`, `retain90.json`, ... for "
               "TOFU; `verbmem/`, `knowmem/`, `privleak/` for MUSE; `wmdp-bio/` ... for WMDP).")
_front("UL822", "benchmark-wrong-layout", "error", _I,
       "A split file exists but its rows are not in the benchmark's layout: a column is missing, empty or of the "
       "wrong type (e.g. WMDP's `answer` is not an index into `choices`).",
       "A file in another layout converts into records that measure something else; the importer stops at the "
       "first row that does not fit and names it.",
       example='{"question": "...", "response": "..."}   # TOFU rows need `answer`',
       instead="Use the benchmark's own files, or rename the columns to the benchmark's names.")
_front("UL823", "benchmark-file-unreadable", "error", _I,
       "A split file cannot be read: malformed JSON, not UTF-8, or a parquet / `save_to_disk` file the library "
       "rejects; or a source file changed or vanished between its reading and its hashing for the import's "
       "provenance record.",
       "The importer never guesses at a file it cannot parse; the line and column of the first error are given "
       "where the format has lines.",
       instead="Re-download or re-export the file; JSON splits are a JSON array or one object a line.")
_front("UL824", "import-would-overwrite", "error", _I,
       "The output folder already holds a file the import would write.",
       "Imported records are often edited afterwards; an import never replaces them silently.",
       instead="Choose another `--out DIR`, or pass `--force` to replace the files an earlier import wrote.")
