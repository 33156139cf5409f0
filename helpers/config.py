"""Project-wide settings: the working sample rate, the data folder and the run profile.

Nothing here has side effects: the environment is read when a function is called,
so a notebook can change ``AED_PROFILE`` or ``AED_DATA_DIR`` before asking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The working sample rate of the whole project, in Hz. Every recording is loaded
#: (downmixed and resampled) to this rate before features are computed.
SR = 16_000

#: The label text that marks one plop in an Audacity label file.
PLOP_LABEL = "p"

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder that caches generated and downloaded audio.

    ``$AED_DATA_DIR`` when set, otherwise ``data/`` at the top of the repository.

    Examples
    --------
    >>> import os
    >>> saved = os.environ.pop("AED_DATA_DIR", None)
    >>> data_dir() == REPO_ROOT / "data"
    True
    >>> os.environ["AED_DATA_DIR"] = "/srv/airlock"
    >>> str(data_dir())
    '/srv/airlock'
    >>> if saved is None: del os.environ["AED_DATA_DIR"]
    ... else: os.environ["AED_DATA_DIR"] = saved
    """
    return Path(os.environ.get("AED_DATA_DIR", REPO_ROOT / "data"))


@dataclass(frozen=True)
class Profile:
    """Sizes of a run. ``full`` gives the figures quoted in the README, ``quick``
    runs the same code on small data for the tests."""

    name: str
    synth_recordings: int
    synth_duration_s: float
    synth_seed: int = 2024
    #: extra synthetic recordings that only the detector trains on (more variety)
    train_extra_recordings: int = 0
    train_extra_duration_s: float = 30.0
    train_extra_seed: int = 7
    #: the airlock types the extra training set draws (:data:`helpers.synth.AIRLOCKS` and,
    #: in the full profile, the :data:`helpers.synth.BUBBLER`'s big, low bubbles)
    train_extra_airlocks: tuple[str, ...] = ("s_type", "three_piece", "blowoff", "drip")
    #: recordings of speech or music alone (:func:`helpers.backgrounds.negatives`, each
    #: ``train_negatives_duration_s`` long) that the detector trains on as hard negatives
    train_negatives: int = 0
    train_negatives_duration_s: float = 30.0
    #: recordings of *recorded* bubbles (the training half of :mod:`helpers.bubbles`, each
    #: ``train_bubbles_duration_s`` long, in a background at 0–20 dB) trained on beside the
    #: generator's plops
    train_bubbles: int = 0
    train_bubbles_duration_s: float = 30.0
    #: extra synthetic validation recordings (all ``val``) that the post-processing thresholds
    #: are tuned on beside the main set's validation split, which is too small to set them
    val_extra_recordings: int = 0
    val_extra_duration_s: float = 60.0
    val_extra_seed: int = 9090
    #: a larger test set of fresh recordings (all ``test``) that nothing trains or tunes on;
    #: ``make bench`` scores every system on it beside the main set's test split
    test_extra_recordings: int = 0
    test_extra_duration_s: float = 60.0
    test_extra_seed: int = 4242
    train_epochs: int = 8
    #: a safety stop for training time; None trains exactly ``train_epochs`` epochs (with
    #: early stopping), which keeps ``make model`` reproducible whatever the machine's load
    train_budget_s: float | None = None

    @property
    def synth_dir(self) -> Path:
        return self._dir("synthetic")

    def extra_dir(self, role: str) -> Path:
        """Folder of the extra ``"train"``, ``"val"`` or ``"test"`` set
        (``data/synthetic-val``, or ``data/synthetic-val-quick`` for the quick profile)."""
        return self._dir(f"synthetic-{role}")

    def _dir(self, stem: str) -> Path:
        return data_dir() / (stem if self.name == "full" else f"{stem}-{self.name}")


PROFILES = {
    "full": Profile("full", synth_recordings=60, synth_duration_s=60.0,
                    train_extra_recordings=120, train_extra_duration_s=30.0, train_negatives=72,
                    train_extra_airlocks=("s_type", "three_piece", "blowoff", "drip", "bubbler"),
                    train_bubbles=40,
                    val_extra_recordings=60, test_extra_recordings=120,
                    train_epochs=12, train_budget_s=None),
    "quick": Profile("quick", synth_recordings=12, synth_duration_s=20.0,
                     train_extra_recordings=6, train_extra_duration_s=10.0, train_negatives=2,
                     train_negatives_duration_s=10.0, train_bubbles=2, train_bubbles_duration_s=10.0,
                     val_extra_recordings=4, val_extra_duration_s=20.0,
                     test_extra_recordings=6, test_extra_duration_s=20.0,
                     train_epochs=2, train_budget_s=None),
}


def profile(name: str | None = None) -> Profile:
    """The run profile named by ``name`` or ``$AED_PROFILE`` (default ``full``).

    Examples
    --------
    >>> profile("quick").synth_recordings
    12
    """
    name = name or os.environ.get("AED_PROFILE", "full")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown profile {name!r} (from AED_PROFILE); choose one of {sorted(PROFILES)}"
        ) from None
