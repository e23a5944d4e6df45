"""Publishing: the Hub repo layout (parquet shards + dataset card) written locally or pushed in one commit.

Data and card go up in a single commit, so the card's metadata (``configs``, sizes) is never overwritten by
a later data push, and metadata already in the repo's README (a license you set, extra tags) is kept.
Rejected rows are published as a separate ``rejected`` config: inspectable, never mixed with training data.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from .cards import GENERATED_TAGS, size_category

logger = logging.getLogger(__name__)

DEFAULT_SHARD_ROWS = 100_000


class HubPushError(RuntimeError):
    """A push failed for a reason the user can fix (message says how); never contains the token."""


def _write_shards(dataset: Dataset, folder: Path, split: str, shard_rows: int) -> tuple[str, DatasetInfo]:
    """Write ``dataset`` as parquet shards ``{split}-00000-of-0000N-{digest}.parquet``, where ``digest`` hashes
    the bytes of all shards. Returns the data-files pattern of the shards (relative to ``folder``'s parent)
    and what ``dataset_info`` in the card says of them: features, rows, bytes (datasets checks the row count
    against the files it reads).

    The digest is what keeps ``load_dataset`` from handing back an earlier push's rows: datasets caches a
    local folder under ``<folder name>/<config>/0.0.0/<hash of the README's configs and dataset_info>``, so
    with fixed file names two pushes into one folder (or two folders of the same name) share a cache entry.
    The names, and with them the ``configs`` patterns, now change whenever the rows do.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, math.ceil(len(dataset) / shard_rows))
    digest = hashlib.sha256()
    written, num_bytes = [], 0
    for index in range(shards):
        part = folder / f".{split}-{index:05d}.parquet.partial"
        shard = dataset.shard(num_shards=shards, index=index, contiguous=True)
        shard.to_parquet(str(part))
        num_bytes += shard.with_format("arrow")[:].nbytes if len(shard) else 0
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        written.append(part)
    tag = digest.hexdigest()[:16]
    size = 0
    for index, part in enumerate(written):
        size += part.stat().st_size
        part.replace(folder / f"{split}-{index:05d}-of-{shards:05d}-{tag}.parquet")
    info = DatasetInfo(
        features=dataset.features,
        splits=SplitDict({split: SplitInfo(name=split, num_bytes=num_bytes, num_examples=len(dataset))}),
        download_size=size,
        dataset_size=num_bytes,
    )
    return f"{folder.name}/{split}-*-{tag}.parquet", info


#: Card metadata that describes the data files, not the dataset: it is regenerated on every push and the
#: repo's old values are dropped (a stale ``dataset_info`` makes ``load_dataset`` fail on the new files).
GENERATED_METADATA = ("configs", "dataset_info", "size_categories")
#: The message of a refused empty push; the CLI says ``--allow-empty`` where this says ``allow_empty=True``.
EMPTY_PUSH = (
    "{what} holds no rows (every row was dropped; the run's rejected.jsonl and summary.json say why): "
    "load_dataset cannot read a split with no rows, so it is not published; pass {flag} to publish it anyway."
)
#: The data folders a push owns: replaced as a whole, so no shard of an earlier push survives.
DATA_FOLDERS = ("data", "rejected")


def _merge_metadata(existing: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Our keys win, and keys only the existing card has are kept; metadata generated from the data files
    (:data:`GENERATED_METADATA`) is never carried over. Tags are united, except the tags hf-synth writes
    itself (:data:`~hf_synth.cards.GENERATED_TAGS`): those are this push's only, so an Evol-Instruct push
    over a Self-Instruct one no longer says ``self-instruct``; a tag the owner added stays."""
    existing = {k: v for k, v in existing.items() if k not in GENERATED_METADATA}
    merged = {**existing, **{k: v for k, v in ours.items() if v is not None}}
    kept_tags = [t for t in existing.get("tags") or [] if t not in GENERATED_TAGS]
    tags = list(dict.fromkeys([*(ours.get("tags") or []), *kept_tags]))
    if tags:
        merged["tags"] = tags
    if existing.get("license") and existing.get("license") != "other":
        merged["license"] = existing["license"]  # a license the owner chose is not replaced by our default
    return merged


def write_repo(
    dataset: Dataset,
    local_dir: str | Path,
    *,
    card: DatasetCard | None = None,
    rejected: Dataset | None = None,
    existing_card: DatasetCard | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    allow_empty: bool = False,
) -> Path:
    """Write the Hub layout to ``local_dir``: ``data/train-*.parquet``, ``rejected/train-*.parquet`` and a
    README.md whose YAML declares both configs and their ``dataset_info``. ``load_dataset(local_dir)`` and
    ``DatasetCard.load`` read it back, and read this push's rows even where an earlier push into the same
    folder (or into another folder of the same name) is in the datasets cache: the data file names carry a
    digest of their content. An existing README in ``local_dir`` (or ``existing_card``) has its metadata
    merged, not replaced. A dataset with no rows is refused (``ValueError``) unless ``allow_empty``.
    """
    if len(dataset) == 0 and not allow_empty:
        raise ValueError(EMPTY_PUSH.format(what="The dataset", flag="allow_empty=True"))
    root = Path(local_dir)
    root.mkdir(parents=True, exist_ok=True)
    readme = root / "README.md"
    if existing_card is None and readme.is_file():
        existing_card = DatasetCard.load(readme)
    for sub in DATA_FOLDERS:
        if (root / sub).is_dir():
            shutil.rmtree(root / sub)
    pattern, info = _write_shards(dataset, root / "data", "train", shard_rows)
    configs = [
        {"config_name": "default", "data_files": [{"split": "train", "path": pattern}], "default": True}
    ]
    infos = DatasetInfosDict(default=info)
    if rejected is not None and len(rejected):
        pattern, info = _write_shards(rejected, root / "rejected", "train", shard_rows)
        configs.append({"config_name": "rejected", "data_files": [{"split": "train", "path": pattern}]})
        infos["rejected"] = info
    card = card or DatasetCard(f"---\n{DatasetCardData(tags=['synthetic', 'hf-synth']).to_yaml()}\n---\n")
    ours = card.data.to_dict()
    ours["configs"] = configs
    ours["size_categories"] = [size_category(len(dataset))]
    generated = DatasetCardData()
    infos.to_dataset_card_data(generated)
    ours["dataset_info"] = generated.to_dict()["dataset_info"]
    merged = _merge_metadata(existing_card.data.to_dict() if existing_card else {}, ours)
    final = DatasetCard(f"---\n{DatasetCardData(**merged).to_yaml()}\n---\n{card.text}")
    final.save(str(readme))
    return root


def push_to_hub(
    dataset: Dataset,
    repo_id: str,
    *,
    card: DatasetCard | None = None,
    rejected: Dataset | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload dataset made with hf-synth",
    shard_rows: int = DEFAULT_SHARD_ROWS,
    exist_ok: bool = True,
    allow_empty: bool = False,
) -> str:
    """Push ``dataset`` (and ``rejected`` rows, as config ``rejected``) with ``card`` to the dataset repo
    ``repo_id`` in one commit; creates the repo if needed (with ``exist_ok=False``, an existing repo is an
    error instead of being updated). Returns the repo URL. The data files of earlier pushes are deleted in
    the same commit. A dataset with no rows is refused (``ValueError``) unless ``allow_empty``.

    Raises :class:`HubPushError` with a one-line fix for a missing or invalid token, missing write
    permission, or a repo id that exists as another type.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    if len(dataset) == 0 and not allow_empty:
        raise ValueError(EMPTY_PUSH.format(what="The dataset", flag="allow_empty=True"))
    token = token or get_token()
    if not token:
        raise HubPushError("No Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token.")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=exist_ok)
    except HfHubHTTPError as err:
        raise _push_error(err, repo_id) from None
    existing = None
    try:  # through the api object, so a custom endpoint (HF_ENDPOINT, a mirror) is used for this too
        existing = DatasetCard.load(api.hf_hub_download(repo_id, "README.md", repo_type="dataset"))
    except (EntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError):
        logger.debug("No README in %s yet", repo_id)
    with tempfile.TemporaryDirectory(prefix="hf-synth-push-") as tmp:
        write_repo(
            dataset,
            tmp,
            card=card,
            rejected=rejected,
            existing_card=existing,
            shard_rows=shard_rows,
            allow_empty=allow_empty,
        )
        try:
            api.upload_folder(  # in the same commit, the shards of an earlier push are deleted
                folder_path=tmp,
                repo_id=repo_id,
                repo_type="dataset",
                commit_message=commit_message,
                delete_patterns=[f"{folder}/*" for folder in DATA_FOLDERS],
            )
        except HfHubHTTPError as err:
            raise _push_error(err, repo_id) from None
    logger.info("Pushed %d rows to %s", len(dataset), url)
    return str(url)


def _push_error(err: Exception, repo_id: str) -> HubPushError:
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 401:
        return HubPushError(
            f"The Hugging Face token was refused (401) for {repo_id}: log in again or pass --token."
        )
    if status == 403:
        return HubPushError(
            f"No permission to write {repo_id} (403): use a token with write access to that namespace."
        )
    if status == 409:
        return HubPushError(
            f"{repo_id} already exists (409): choose another id, or allow updating it (drop --new-only)."
        )
    return HubPushError(f"Pushing to {repo_id} failed (HTTP {status}): {str(err).splitlines()[0]}")
