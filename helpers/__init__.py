"""Audio event detection for airlock plops: the helpers behind the notebooks.

Modules
-------
config      the working sample rate (16 kHz), data folder and run profile (``AED_PROFILE``)
audio       load any audio file to mono float32 at the working rate; save audio
labels      read and write Audacity label files
synth       the physically motivated airlock recording generator (the default data set)
datasets    manifests for the synthetic, YouTube and own-recordings sources; splits; caches
youtube     the video catalogue, search and section download with yt-dlp
features    log-mel spectrograms, frame labels, and the block-by-block model front end (PCEN)
baselines   the tuned energy-threshold counter (and the MFCC + logistic-regression baseline)
autolabel   the unsupervised GMM-HMM labeler
augment     training-time augmentation: backgrounds at a chosen SNR, speed, recording chain
backgrounds recorded speech and music (committed clips): training backgrounds, hard negatives
models      the CRNN detector: build, train, save, LiteRT export, batch detection
training    the training recipe of the shipped model and its held-out estimate
events      frame probabilities → events (hysteresis, peak picking) → BPM with an interval
evaluate    the three views: windows, events (sed_eval: onsets, segments) and BPM per recording
systems     every detector behind one interface: tuning, runs, tables, threshold sweeps, errors
robustness  plops mixed into each background at a chosen SNR; sweeps; with/without augmentation
bubbles     recorded bubbles (committed clips) cut one by one and spaced like an airlock's plops
weak        a detector from clip-level (weak) labels: multiple-instance learning, temporal pooling
stream      live listening: microphone, file or stdin → streaming detector → rolling BPM
brewfather  the Brewfather Custom Stream client (rate limit, retries, redacted URL)
plots       the figures; bpm_plots: those of notebook 06; eval_plots: those of notebook 07
cli         ``python -m helpers <command>``

Importing ``helpers`` has no side effects; import the modules you need, e.g.
``from helpers import audio, labels``.
"""

__version__ = "0.1.0"
