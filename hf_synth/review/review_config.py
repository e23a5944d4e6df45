"""Configuration of a human review (``hf-synth review``), beside :mod:`.server` and :mod:`.apply`."""

from __future__ import annotations

from dataclasses import dataclass

from ..configuration import option


@dataclass
class ReviewConfig:
    """What a review looks at and where its page is served.

    Args:
        sample: Review a random sample of this many kept rows instead of all of them (fixed when the review
            starts; reopening continues it).
        seed: Seed of the random sample.
        include_rejected: Also show the rows the run's filters dropped, with their reasons, so the reviewer
            can judge the filters (their verdicts are counted, the rows stay rejected).
        reviewer: Name recorded with each decision (the page can change it).
        host: Address the page listens on; only loopback addresses unless allow_remote.
        port: Port of the page (0: any free port).
        allow_remote: Accept connections from other machines (the page has no login: use only on a trusted
            network).
        skills: Label rows without a skill column with hf-synth's skill classifier, for the skill filter and
            the acceptance rate by skill.
    """

    sample: int | None = option(None)
    seed: int | None = option(None)
    include_rejected: bool | None = option(None)
    reviewer: str | None = option(None)
    host: str = option("127.0.0.1")
    port: int = option(7860)
    allow_remote: bool = option(False)
    skills: bool = option(True)
