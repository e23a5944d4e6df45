#!/usr/bin/env python
"""Fine-tune a causal LM with TRL's SFTTrainer on a dataset made by hf-synth.

    python scripts/sft.py --dataset runs/demo --output_dir sft-out --max_steps 100
    python scripts/sft.py --dataset user/my-synthetic-data --model_name_or_path HuggingFaceTB/SmolLM2-360M-Instruct \\
        --use_peft --lora_r 16 --learning_rate 2e-4 --num_train_epochs 1

``--dataset`` takes an hf-synth output folder, a dataset folder or file, or a Hub id; training uses its
``messages`` column (TRL's conversational format). Every SFTConfig / TrainingArguments option and TRL's
model options (``--use_peft``, ``--lora_*``, ``--torch_dtype`` ...) can be passed, or a ``--config`` YAML.
Without ``--model_name_or_path`` the embedded default model (SmolLM2-135M-Instruct) is trained.

Preference data (``chosen``/``rejected`` columns, or rows marked as negative examples) is refused: its
rejected responses are deliberately bad and must never be trained on as targets. Use scripts/dpo.py.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from hf_synth.io import load_seed_dataset
from hf_synth.progress import quiet_libraries
from hf_synth.training import script_defaults

logger = logging.getLogger("hf_synth.sft")

NEGATIVE_MARKERS = ("rejected", "chosen")


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "hf-synth output folder, dataset folder/file, or Hub id"})
    dataset_split: str | None = field(
        default=None, metadata={"help": "split (default: train / the only one)"}
    )
    messages_column: str = field(default="messages", metadata={"help": "column in TRL conversational format"})
    verbose: bool = field(
        default=False,
        metadata={
            "help": "also show the bars of datasets and transformers (by default only the training bar)"
        },
    )


def check_not_preference_data(dataset) -> None:
    """Refuse datasets that carry deliberately bad responses (DPO pairs or marked negative examples)."""
    columns = set(dataset.column_names)
    if columns & set(NEGATIVE_MARKERS):
        raise SystemExit(
            f"{sorted(columns & set(NEGATIVE_MARKERS))} columns found: this is preference data with deliberately "
            "bad responses; train on it with scripts/dpo.py, not SFT."
        )
    if "is_negative" in columns and any(dataset["is_negative"]):
        raise SystemExit("Rows marked is_negative found: negative examples must never be SFT targets.")


def main() -> None:
    parser = TrlParser((DataArguments, SFTConfig, ModelConfig))
    parser.set_defaults(**script_defaults())
    data_args, training_args, model_args = parser.parse_args_and_config()
    if not data_args.verbose:  # the training bar stays; datasets' per-map and the weight-loading bars go
        quiet_libraries()
    dataset = load_seed_dataset(data_args.dataset, split=data_args.dataset_split)
    check_not_preference_data(dataset)
    if data_args.messages_column not in dataset.column_names:
        raise SystemExit(
            f"No {data_args.messages_column!r} column in {data_args.dataset} (columns: "
            f"{', '.join(dataset.column_names)}); pass --messages_column NAME."
        )
    dataset = dataset.select_columns([data_args.messages_column])
    if data_args.messages_column != "messages":
        dataset = dataset.rename_column(data_args.messages_column, "messages")
    model = model_args.model_name_or_path
    if model is None:
        from hf_synth.engine import default_model_path

        model = str(default_model_path())
    trainer = SFTTrainer(
        model=model, args=training_args, train_dataset=dataset, peft_config=get_peft_config(model_args)
    )
    result = trainer.train()
    metrics = dict(result.metrics)
    if not math.isfinite(metrics.get("train_loss", float("nan"))):
        raise SystemExit(f"Training loss is not finite: {metrics.get('train_loss')}")
    trainer.save_model(training_args.output_dir)
    trainer.save_metrics("train", metrics)
    logger.info("Saved the model and train_results.json to %s", training_args.output_dir)


if __name__ == "__main__":
    main()
