#!/usr/bin/env python
"""Preference training with TRL's DPOTrainer on ``prompt``/``chosen``/``rejected`` pairs.

    python scripts/dpo.py --dataset runs/pairs --output_dir dpo-out --max_steps 100 [--model_name_or_path M]

``--dataset`` takes an hf-synth output folder, a dataset folder or file, or a Hub id, with TRL's
preference columns (standard or conversational). All DPOConfig and TRL model options can be passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trl import DPOConfig, DPOTrainer, ModelConfig, TrlParser, get_peft_config

from hf_synth.io import load_seed_dataset
from hf_synth.training import script_defaults

REQUIRED = ("prompt", "chosen", "rejected")


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "hf-synth output folder, dataset folder/file, or Hub id"})
    dataset_split: str | None = field(
        default=None, metadata={"help": "split (default: train / the only one)"}
    )


def main() -> None:
    parser = TrlParser((DataArguments, DPOConfig, ModelConfig))
    parser.set_defaults(**script_defaults())
    data_args, training_args, model_args = parser.parse_args_and_config()
    dataset = load_seed_dataset(data_args.dataset, split=data_args.dataset_split)
    missing = [c for c in REQUIRED if c not in dataset.column_names]
    if missing:
        raise SystemExit(
            f"{data_args.dataset} lacks the preference column(s) {', '.join(missing)} (columns: "
            f"{', '.join(dataset.column_names)}); DPO needs prompt, chosen and rejected."
        )
    dataset = dataset.select_columns(list(REQUIRED))
    model = model_args.model_name_or_path
    if model is None:
        from hf_synth.engine import default_model_path

        model = str(default_model_path())
    trainer = DPOTrainer(
        model=model, args=training_args, train_dataset=dataset, peft_config=get_peft_config(model_args)
    )
    result = trainer.train()
    if not math.isfinite(result.metrics.get("train_loss", float("nan"))):
        raise SystemExit(f"Training loss is not finite: {result.metrics.get('train_loss')}")
    trainer.save_model(training_args.output_dir)
    trainer.save_metrics("train", dict(result.metrics))


if __name__ == "__main__":
    main()
