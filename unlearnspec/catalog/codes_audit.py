"""The pages of the audit codes: UL80x for a request ledger whose hash chain is broken or that is not there
(`unlearnspec ledger verify`, :mod:`unlearnspec.audit.ledger`), UL81x for a run whose signature does not
verify (`unlearnspec verify`, :mod:`unlearnspec.audit.signing`)."""

from __future__ import annotations

from unlearnspec.catalog.pages import Category, CodePage, Severity

PAGES: list[CodePage] = []


def _front(code: str, name: str, severity: Severity, category: Category, summary: str, why: str,
           example: str = "", instead: str = "") -> None:
    PAGES.append(CodePage(code=code, name=name, severity=severity, category=category, summary=summary, why=why,
                          example=example, instead=instead))

_A: Category = "audit"
_front("UL801", "ledger-line-edited", "error", _A,
       "A ledger line's content does not match the hash recorded in it: the line was edited after it was written.",
       "The ledger is the record of which requests were applied to a model and with what verdicts; an edited "
       "verdict or model hash would rewrite that history unnoticed.",
       instead="Restore the ledger from a copy; never edit it by hand (each run appends its own lines).")
_front("UL802", "ledger-chain-broken", "error", _A,
       "A ledger line does not name the previous line's hash (or its recorded position is wrong): a line was "
       "deleted, inserted or reordered before it.",
       "Every line carries the hash of the line before it, so a request cannot be removed from the record or "
       "moved without breaking the chain at that position.",
       instead="Restore the ledger from a copy; investigate who changed it.")
_front("UL803", "ledger-line-unreadable", "error", _A,
       "A ledger line is not a JSON ledger entry, or the file is cut short or not UTF-8.",
       "A line that cannot be read cannot be verified, and nothing after it can be trusted to follow it.",
       instead="Restore the ledger from a copy.")
_front("UL804", "ledger-truncated", "error", _A,
       "The ledger holds fewer lines than its head file recorded, a line the head names has another hash, the "
       "head records more than one line fewer than the ledger holds, the head file of a ledger with any entry is "
       "missing, or a head file remains whose ledger is missing or empty.",
       "Deleting the last lines of a hash chain leaves a valid shorter chain; the head file (`<model>.head.json`) "
       "records how long the ledger was, so a cut end is found too. The head is written before the ledger's first "
       "line (recording none) and after each line, so a crash leaves it at most one line behind and never leaves "
       "a line without it.",
       instead="Restore the ledger from a copy; run folders' receipts (`ledger verify LEDGER --run RUN_DIR`) and "
               "their signed reports, whose sha256 each line records, settle which is right.")
_front("UL805", "ledger-unwritable", "error", _A,
       "The ledger folder or a ledger file cannot be written (permissions, a full disk, a file where the folder "
       "should be), or the model the run made is gone, so its hash cannot be recorded (the ledger never records "
       "the weights as unchanged in its place).",
       "A run appends its requests at its end; when that fails the reports are complete but the model's record "
       "of requests is not, and the run says so rather than failing silently. `ledger mark` on a ledger it cannot "
       "write (a read-only folder or file, a `.lock` that is not a file) appends nothing to it and says so.",
       instead="Give a writable folder with `run --ledger DIR`.")
_front("UL806", "ledger-receipt-mismatch", "error", _A,
       "A run folder's ledger receipt (`ledger.json`) does not match the ledger: the line it names is not there, "
       "holds another entry or another hash, records another `report.json` than the run folder holds, says "
       "something the report does not (a verdict, the overall result, the plan or model hash, the request's "
       "title, basis or owner: each differing field is named), or the run folder's `plan.json` is missing or "
       "another plan's (`unlearnspec ledger verify LEDGER --run RUN_DIR`).",
       "The receipt is what ties a run's report to its line in the model's ledger; a model card cites it. A "
       "receipt that the ledger does not bear out means the ledger was rewritten consistently (which its own "
       "chain cannot show), the receipt was edited, or the report was replaced after the run was recorded.",
       instead="Find which copy is authentic: a signed report (`unlearnspec verify`) or an earlier copy of the "
               "ledger settles it.")
_front("UL807", "ledger-not-found", "error", _A,
       "`ledger show`, `ledger verify` or `ledger mark` was given a path that is neither a ledger folder nor a "
       "ledger file (it is not there, or it is a device or a FIFO), or `ledger verify` a folder that holds no ledger "
       "(`*.jsonl`, `*.head.json`). (`ledger mark` given a folder that does not hold the run's lines is UL806.)",
       "A verification of nothing must not read as a verification that passed: a mistyped ledger folder is an "
       "error (exit 2), never an empty success.",
       instead="unlearnspec ledger verify runs/ledger   # the folder given to `run --ledger`")
_front("UL811", "signature-invalid", "error", _A,
       "The run's signature does not verify: a file it covers (report.json, the plan, report.md, report.html, "
       "run.json, the ledger receipt, the run log, the objectives' evidence and unlearned model files) or the "
       "signature file changed after signing, a file was added below `objectives/` (an extra model shard or "
       "evidence file: the signature lists every file there was), or it was signed with another key.",
       "A signature ties a report to the key of whoever signed it off; any changed byte means the report read "
       "now is not the report that was signed.",
       instead="Ask the signer for the original run folder, or re-run and sign again.")
_front("UL812", "signature-missing", "error", _A,
       "The run folder has no signature file, report.json or plan.json to verify; or, for `sign` and `card`, the run "
       "has not finished (run.json records no finish, or a report is missing: a resume would rewrite what was "
       "signed), its plan does not load or no longer hashes to its `plan_hash`, or its report is not a valid report "
       "of that plan.",
       "Verification needs the signed bytes and the detached signature beside them.",
       instead="unlearnspec sign RUN_DIR --key KEY   # writes RUN_DIR/report.sig.json")
_front("UL813", "key-unreadable", "error", _A,
       "A key file is missing, is not a PEM Ed25519 key of the expected kind (private for `sign`, public for "
       "`verify`), or the private key file is readable by others.",
       "Signatures are made with one Ed25519 private key and checked with its public key; a private key others "
       "can read signs for anyone.",
       instead="unlearnspec keygen --out KEY   # writes KEY (mode 0600) and KEY.pub")
_front("UL814", "signature-not-replaced", "error", _A,
       "`sign` will not write the signature file: one is already in the run folder (it is replaced only with "
       "`--force`), a link is in its place (never written through; `--force` replaces the link itself), something "
       "other than a file is there, or the run folder cannot be written.",
       "A signature that is silently replaced loses the signer's earlier sign-off, and a link planted at "
       "`report.sig.json` would make `sign` overwrite whatever file the link names.",
       instead="unlearnspec verify RUN_DIR --pub KEY.pub   # check the signature that is there\n"
               "unlearnspec sign RUN_DIR --key KEY --force   # or replace it")
_front("UL808", "ledger-mark-unfounded", "error", _A,
       "A mark in a request ledger (a line `unlearnspec ledger mark` wrote: a run adopted, a trial, withdrawn) names "
       "a line that is not an earlier request line of the same ledger with the hash and request it gives, or one "
       "that records another report than the mark names; or it gives a status `ledger mark` refuses (UL809) after the "
       "marks before it: a withdrawn run marked again, an adopted run marked a trial, a second run adopted for one "
       "request (`unlearnspec ledger verify`).",
       "A mark is written after the lines it is about, in their ledger, and its own hash covers what it names; one "
       "that names nothing there was edited with its hash recomputed, or copied from another ledger, and a status "
       "it claims is about no run the ledger holds.",
       instead="Restore the ledger from a copy; the run folders' receipts (`ledger verify LEDGER --run RUN_DIR`) say "
               "which lines each run recorded.")
_front("UL809", "ledger-mark-refused", "error", _A,
       "`unlearnspec ledger mark` will not mark the run: the reason (`--why`) or the name (`--by`) is empty; a "
       "request of the run was withdrawn (a withdrawal is final); the run was adopted and is now called a trial; or "
       "the request is already adopted from another run. Nothing is appended.",
       "A mark says which run's model a team released, and the ledger never rewrites a line: a status that "
       "contradicts an earlier one (a released run turned into a trial after the fact, two runs released for one "
       "request) would make `ledger show` and the model card say something the history does not bear out.",
       example="unlearnspec ledger mark runs/ledger --run runs/try-2 --adopted --by privacy-office --why \"v2\"\n"
               "# error[UL809]: request `erase-jane-doe` is already adopted from another run (line 1, run `runs/try-1`)",
       instead="unlearnspec ledger mark runs/ledger --run runs/try-1 --withdrawn --by privacy-office \\\n"
               "    --why \"superseded by try-2\"\n"
               "unlearnspec ledger mark runs/ledger --run runs/try-2 --adopted --by privacy-office --why \"released as v2\"")
