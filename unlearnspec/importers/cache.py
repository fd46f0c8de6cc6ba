"""The `datasets` library's own cache as a source: ``~/.cache/huggingface/datasets/ORG___NAME/CONFIG/VERSION/HASH/``.

``load_dataset("ORG/NAME", CONFIG)`` converts the hub's files once and keeps what it built in a build folder
``ORG___NAME/CONFIG/VERSION/HASH/`` (``DatasetBuilder._relative_data_dir``; HASH is the hub commit for a hub
dataset): ``dataset_info.json``, whose ``splits`` give each split's ``num_examples`` and, when it is sharded, its
``shard_lengths``, and one Arrow file per split, ``NAME-SPLIT.arrow``, or ``NAME-SPLIT-00000-of-00002.arrow`` ...
(``naming.filenames_for_dataset_split``). Beside a build lie ``HASH_builder.lock`` files, and ``HASH.incomplete/``
while one is being written (it gets its ``dataset_info.json`` before it is renamed); neither is a build. A configuration folder holds one split (TOFU's ``forget10``,
WMDP's ``wmdp-bio``: ``train``, ``test``) or a subset's splits (MUSE's ``verbmem``: ``forget``).

The Arrow files are the IPC stream format `datasets` writes; they are read with ``pyarrow``, imported only when such
a file is met. Each file must hold the rows ``dataset_info.json`` counts for it: a shard of another build, or one
cut short, would lose or add rows without a word (UL821).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from unlearnspec.importers.split import INSTALL_HELP, ImportFailure, Source
from unlearnspec.markdown import code_span

#: a build's version folder (``0.0.0``, ``1.0.0``): `datasets`' ``Version``
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
#: a dataset name as `datasets` puts it into a file name (``tofu``, ``muse-news``): no path, no leading dot
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def build_folder(folder: Path) -> Path | None:
    """The build folder of ``folder`` when it is a configuration folder of the `datasets` cache, else None.

    Two builds (the configuration loaded at two hub commits, or by two versions) are UL821: the importer does not
    guess which is current."""
    if not folder.is_dir():
        return None
    builds = sorted((b for v in folder.iterdir() if v.is_dir() and VERSION.match(v.name)
                     for b in v.iterdir() if b.is_dir() and not b.name.endswith(".incomplete")
                     and (b / "dataset_info.json").is_file()),
                    key=lambda b: (b.parent.name, b.name))
    if len(builds) > 1:
        raise ImportFailure("UL821", f"the `datasets` cache holds {len(builds)} builds of configuration "
                            f"{code_span(folder.name)}: "
                            + ", ".join(code_span(f"{b.parent.name}/{b.name}") for b in builds), folder,
                            help=["each is the configuration as loaded at one hub commit; the importer does not guess "
                                  "which is current: remove the others (`datasets` builds a configuration again when "
                                  "it is next loaded)"])
    return builds[0] if builds else None


def build_splits(build: Path) -> dict[str, dict[str, Any]]:
    """The ``splits`` of a build's ``dataset_info.json``: split name -> its ``num_examples``, ``shard_lengths``, ...;
    UL823 when the file is not a `datasets` build record."""
    path = build / "dataset_info.json"
    try:
        splits = json.loads(path.read_text(encoding="utf-8")).get("splits")
    except (OSError, ValueError, AttributeError) as exc:
        raise ImportFailure("UL823", f"`dataset_info.json` cannot be read as `datasets` writes it: {exc}", path,
                            help=["load the dataset again with `datasets` to rebuild it"]) from exc
    if not isinstance(splits, dict) or not all(isinstance(v, dict) and _count(v.get("num_examples"))
                                               for v in splits.values()):
        raise ImportFailure("UL823", "`dataset_info.json` does not count the rows of each split (`splits`)", path,
                            help=["load the dataset again with `datasets` to rebuild it"])
    for split, info in splits.items():
        shards, name = info.get("shard_lengths"), info.get("dataset_name")
        if shards is not None and not (isinstance(shards, list) and all(_count(n) for n in shards)
                                       and (len(shards) < 2 or sum(shards) == info["num_examples"])):
            raise ImportFailure("UL823", f"`dataset_info.json` gives split {code_span(split)} shard lengths that are not "
                                "row counts adding up to its `num_examples`", path,
                                help=["`shard_lengths` is a list of the rows each arrow shard holds, as `datasets` "
                                      "writes it; load the dataset again with `datasets` to rebuild it"])
        if name is not None and not (isinstance(name, str) and SAFE_NAME.match(name)):
            raise ImportFailure("UL823", f"`dataset_info.json` gives split {code_span(split)} a `dataset_name` that is "
                                "not a file name", path,
                                help=["`datasets` names the arrow files `NAME-SPLIT.arrow` after the dataset; a name "
                                      "with a path in it would read files outside the build folder"])
    return splits


def _count(value: object) -> bool:
    """Whether ``value`` is a row count: a non-negative integer (JSON's `true` is not one)."""
    return type(value) is int and value >= 0


def cache_split(build: Path, split: str | None) -> Source | None:
    """The Arrow files of ``split`` in a build (``None``: the build's one split; UL821 when it has several), with the
    rows each must hold; None when the build has no such split. A missing file is UL821."""
    splits = build_splits(build)
    if split is None:
        if len(splits) != 1:
            raise ImportFailure("UL821", "the `datasets` build holds more than one split: "
                                + ", ".join(code_span(s) for s in splits), build,
                                help=["a benchmark split is one of them and the importer does not guess which"])
        [split] = splits
    info = splits.get(split)
    if info is None:
        return None
    name = info.get("dataset_name") or build.parents[2].name.rsplit("___", 1)[-1]
    shards = info.get("shard_lengths") or []
    if len(shards) > 1:
        files = [build / f"{name}-{split}-{k:05d}-of-{len(shards):05d}.arrow" for k in range(len(shards))]
        counts = tuple(shards)
    else:
        files, counts = [build / f"{name}-{split}.arrow"], (int(info["num_examples"]),)
    for k, f in enumerate(files):
        if not f.is_file():
            what = f"shard {k + 1} of {len(files)}" if len(files) > 1 else "its arrow file"
            raise ImportFailure("UL821", f"split {code_span(split)} of the `datasets` build is incomplete: {what}, "
                                f"{code_span(f.name)}, is missing", build,
                                help=["load the dataset again with `datasets` (it rebuilds the cache), or give the "
                                      "benchmark's downloaded files; rows would otherwise be lost silently"])
    return Source(files[0], tuple(files), counts=counts)


def read_arrow(path: Path) -> list[dict[str, Any]]:
    """The rows of one Arrow file of the `datasets` cache (the IPC stream format); UL823 when it is not one."""
    try:
        import pyarrow as pa  # only for the `datasets` cache's files
    except ImportError as exc:
        raise ImportFailure("UL823", "reading the `datasets` cache's arrow files needs `pyarrow`, which is not "
                            "installed", path, help=[INSTALL_HELP]) from exc
    try:
        with pa.memory_map(str(path)) as stream:
            return list(pa.ipc.open_stream(stream).read_all().to_pylist())
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        first = str(exc).strip().splitlines()
        raise ImportFailure("UL823", f"cannot read the arrow file: {first[0].lower() if first else type(exc).__name__}",
                            path, help=["load the dataset again with `datasets` to rebuild it"]) from exc


def cache_root_help(src: Path) -> list[str]:
    """Help for a source folder that is the `datasets` cache itself: give one dataset's folder as SRC."""
    try:
        datasets = sorted(p.name for p in src.iterdir() if p.is_dir() and "___" in p.name)
    except OSError:
        return []
    if not datasets:
        return []
    return ["this is the `datasets` cache; give one dataset's folder as SRC: "
            + ", ".join(code_span(d) for d in datasets[:5]) + (", ..." if len(datasets) > 5 else "")]
