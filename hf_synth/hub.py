"""Publishing: the Hub repo layout (parquet shards + dataset card) written locally or pushed in one commit.

Data and card go up in a single commit, so the card's metadata (``configs``, sizes) is never overwritten by
a later data push, and metadata already in the repo's README (a license you set, extra tags) is kept.
Rejected rows are published as a separate ``rejected`` config: inspectable, never mixed with training data.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset
from huggingface_hub import DatasetCard, DatasetCardData

from .cards import size_category

logger = logging.getLogger(__name__)

DEFAULT_SHARD_ROWS = 100_000


class HubPushError(RuntimeError):
    """A push failed for a reason the user can fix (message says how); never contains the token."""


def _write_shards(dataset: Dataset, folder: Path, split: str, shard_rows: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, math.ceil(len(dataset) / shard_rows))
    names = []
    for index in range(shards):
        name = f"{split}-{index:05d}-of-{shards:05d}.parquet"
        dataset.shard(num_shards=shards, index=index, contiguous=True).to_parquet(str(folder / name))
        names.append(name)
    return names


#: Card metadata that describes the data files, not the dataset: it is regenerated on every push and the
#: repo's old values are dropped (a stale ``dataset_info`` makes ``load_dataset`` fail on the new files).
GENERATED_METADATA = ("configs", "dataset_info", "size_categories")
#: The data folders a push owns: replaced as a whole, so no shard of an earlier push survives.
DATA_FOLDERS = ("data", "rejected")


def _merge_metadata(existing: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Our keys win, except that tags are united and keys only the existing card has are kept; metadata
    generated from the data files (:data:`GENERATED_METADATA`) is never carried over."""
    existing = {k: v for k, v in existing.items() if k not in GENERATED_METADATA}
    merged = {**existing, **{k: v for k, v in ours.items() if v is not None}}
    tags = list(dict.fromkeys([*(existing.get("tags") or []), *(ours.get("tags") or [])]))
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
) -> Path:
    """Write the Hub layout to ``local_dir``: ``data/train-*.parquet``, ``rejected/train-*.parquet`` and a
    README.md whose YAML declares both configs. ``load_dataset(local_dir)`` and ``DatasetCard.load`` read it
    back. An existing README in ``local_dir`` (or ``existing_card``) has its metadata merged, not replaced.
    """
    root = Path(local_dir)
    root.mkdir(parents=True, exist_ok=True)
    readme = root / "README.md"
    if existing_card is None and readme.is_file():
        existing_card = DatasetCard.load(readme)
    for sub in DATA_FOLDERS:
        if (root / sub).is_dir():
            shutil.rmtree(root / sub)
    _write_shards(dataset, root / "data", "train", shard_rows)
    configs = [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*"}],
            "default": True,
        }
    ]
    if rejected is not None and len(rejected):
        _write_shards(rejected, root / "rejected", "train", shard_rows)
        configs.append(
            {"config_name": "rejected", "data_files": [{"split": "train", "path": "rejected/train-*"}]}
        )
    card = card or DatasetCard(f"---\n{DatasetCardData(tags=['synthetic', 'hf-synth']).to_yaml()}\n---\n")
    ours = card.data.to_dict()
    ours["configs"] = configs
    ours["size_categories"] = [size_category(len(dataset))]
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
) -> str:
    """Push ``dataset`` (and ``rejected`` rows, as config ``rejected``) with ``card`` to the dataset repo
    ``repo_id`` in one commit; creates the repo if needed (with ``exist_ok=False``, an existing repo is an
    error instead of being updated). Returns the repo URL.

    Raises :class:`HubPushError` with a one-line fix for a missing or invalid token, missing write
    permission, or a repo id that exists as another type.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

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
        write_repo(dataset, tmp, card=card, rejected=rejected, existing_card=existing, shard_rows=shard_rows)
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
