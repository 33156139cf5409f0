"""Audio event detection for airlock plops: the helpers behind the notebooks.

Modules
-------
config      the working sample rate (16 kHz), data folder and run profile (``AED_PROFILE``)
audio       load any audio file to mono float32 at the working rate; save audio
labels      read and write Audacity label files
synth       the physically motivated airlock recording generator (the default data set)
datasets    manifests for the synthetic, YouTube and own-recordings sources; splits; caches
youtube     the video catalogue, search and section download with yt-dlp
features    frame-level energies and spectrograms used by the notebooks and baselines
baselines   the tuned energy-threshold counter
evaluate    onset-based event F1 (same matching as sed_eval) and BPM error
plots       the figures
__main__    ``python -m helpers <command>``

Importing ``helpers`` has no side effects; import the modules you need, e.g.
``from helpers import audio, labels``.
"""

__version__ = "0.1.0"
