"""What a corpus holds: the items to make (:class:`Job`) and their splits, for
:func:`facetwin.audio.corpus.build_corpus`.

:func:`plan_default` speaks the built-in sentences (``assets/data/sentences/<lang>.txt``, :func:`load_sentences`)
round-robin over the languages with each language's default voice at a drawn rate and pitch, and sings each song in
each of its lyric languages. :func:`plan_diverse` draws a voice and a channel per item (:mod:`facetwin.audio.voices`),
with word salads, held-out voices and transposed songs. Both are deterministic for a seed; the splits are those of
the module docstring of :mod:`facetwin.audio.corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from .songs import list_songs, load_song
from .voices import HELDOUT_VARIANTS, Channel, Voice, draw_channel, draw_voice, train_variants

__all__ = ["Job", "load_sentences", "plan_default", "plan_diverse"]


@dataclass(frozen=True)
class Job:
    """One corpus item to make: what is said or sung, in which language, by whom, through which channel."""

    id: str
    kind: str
    lang: str
    text: str
    sentence: str
    rate_wpm: int | None
    pitch: int | None
    song: str | None = None
    voice: Voice | None = None  # diverse corpora: who speaks (None: the language's default espeak-ng voice)
    channel: Channel | None = None  # diverse corpora: the recording channel
    seed: int = 0  # seed of the channel's noise
    transpose: float = 0.0  # songs: semitones


def load_sentences(lang: str) -> list[str]:
    """The built-in sentences of ``lang`` (assets/data/sentences/<lang>.txt)."""
    path = resources.files("facetwin.assets").joinpath(f"data/sentences/{lang}.txt")
    if not path.is_file():
        raise ValueError(f"no built-in sentences for language {lang!r}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def plan_default(n_utterances: int, langs: tuple[str, ...], heldout_langs: tuple[str, ...], heldout_fraction: float,
                 seed: int, include_songs: bool) -> tuple[list[Job], dict[str, str]]:
    """The jobs of a corpus spoken with each language's default voice (and the songs), and the split of each job
    id: every job of a held-out language is ``heldout_language``; a seeded ``heldout_fraction`` of the sentences
    each other language uses are ``heldout_sentence``; the rest ``train``."""
    rng = np.random.default_rng(seed)
    sentences = {lang: load_sentences(lang) for lang in langs}
    jobs: list[Job] = []
    # round-robin over languages, sentences in a seeded order, voices varied per item
    orders = {lang: list(rng.permutation(len(sentences[lang]))) for lang in langs}
    counts = {lang: 0 for lang in langs}
    for k in range(n_utterances):
        lang = langs[k % len(langs)]
        i = int(orders[lang][counts[lang] % len(orders[lang])])
        variant = counts[lang] // len(orders[lang])
        counts[lang] += 1
        rate = int(rng.integers(135, 196))
        pitch = int(rng.integers(30, 71))
        jobs.append(Job(f"{lang}_{i:03d}_v{variant}", "speech", lang, sentences[lang][i], f"{lang}:{i}", rate, pitch))
    if include_songs:
        for name in list_songs():
            song = load_song(name)
            for lang in song.lyrics:
                if lang in langs:
                    jobs.append(Job(f"song_{name}_{lang}", "song", lang, song.title, f"song:{name}", None, None, name))
    # held-out sentences: a seeded fraction of the sentences each language actually uses (at least one when it
    # uses two or more), so that small corpora have the split too
    heldout_sentence: set[str] = set()
    for lang in langs:
        if lang in heldout_langs:
            continue
        used = sorted({j.sentence for j in jobs if j.kind == "speech" and j.lang == lang})
        k = int(round(heldout_fraction * len(used)))
        if heldout_fraction > 0 and len(used) >= 2:
            k = max(k, 1)
        if k:
            heldout_sentence.update(str(x) for x in rng.choice(used, size=k, replace=False))
    splits = {}
    for job in jobs:
        if job.lang in heldout_langs:
            splits[job.id] = "heldout_language"
        elif job.sentence in heldout_sentence:
            splits[job.id] = "heldout_sentence"
        else:
            splits[job.id] = "train"
    return jobs, splits


def plan_diverse(n_utterances: int, langs: tuple[str, ...], heldout_langs: tuple[str, ...],
                 heldout_fraction: float, seed: int, include_songs: bool, salad_fraction: float,
                 n_heldout_voice: int, song_variants: int, kokoro_fraction: float = 0.0
                 ) -> tuple[list[Job], dict[str, str]]:
    """Many voices (:mod:`facetwin.audio.voices`): each speech item a drawn voice and channel, ``salad_fraction``
    of them word salads (:mod:`facetwin.audio.texts`); ``n_heldout_voice`` extra items spoken by the held-out
    voice variants (split ``heldout_voice``, reading the held-out sentences); songs ``song_variants`` times each,
    transposed and perturbed; ``kokoro_fraction`` of the speech in the Kokoro languages is spoken by the neural
    voice (:mod:`facetwin.audio.kokoro`; every other held-out-voice item then by its held-out voice)."""
    from . import kokoro
    from .texts import word_salad
    from .voices import draw_kokoro_voice

    rng = np.random.default_rng(seed)
    sentences = {lang: load_sentences(lang) for lang in langs}
    train_langs = tuple(lg for lg in langs if lg not in heldout_langs)
    heldout_sentence: set[str] = set()
    for lang in train_langs:
        n = len(sentences[lang])
        k = int(round(heldout_fraction * n))
        if heldout_fraction > 0 and n >= 2:
            k = max(k, 1)
        heldout_sentence.update(f"{lang}:{int(i)}" for i in rng.choice(n, size=k, replace=False))
    variants = train_variants()
    jobs: list[Job] = []
    splits: dict[str, str] = {}
    for k in range(n_utterances):
        lang = langs[k % len(langs)]
        voice, channel = draw_voice(rng, variants), draw_channel(rng)
        if kokoro_fraction > 0 and lang in kokoro.LANGUAGES and rng.random() < kokoro_fraction:
            voice = draw_kokoro_voice(rng, tuple(v for v in kokoro.VOICES if v != kokoro.HELDOUT_VOICE))
        item_seed = int(rng.integers(2**31))
        if lang not in heldout_langs and rng.random() < salad_fraction:
            text = word_salad(lang, rng, int(rng.integers(6, 16)))
            sentence = f"{lang}:salad{k}"
        else:
            i = int(rng.integers(len(sentences[lang])))
            text, sentence = sentences[lang][i], f"{lang}:{i}"
        jid = f"{lang}_{k:05d}"
        jobs.append(Job(jid, "speech", lang, text, sentence, voice.rate_wpm, voice.pitch, voice=voice,
                         channel=channel, seed=item_seed))
        splits[jid] = ("heldout_language" if lang in heldout_langs
                       else "heldout_sentence" if sentence in heldout_sentence else "train")
    held = sorted(heldout_sentence)
    for k in range(n_heldout_voice if held else 0):
        key = held[k % len(held)]
        lang, i = key.split(":")
        voice = draw_voice(rng, HELDOUT_VARIANTS)
        voice = Voice(HELDOUT_VARIANTS[k % len(HELDOUT_VARIANTS)], voice.rate_wpm, voice.pitch, voice.vtl, voice.f0,
                      voice.tempo)
        if kokoro_fraction > 0 and k % 2 == 1 and lang in kokoro.LANGUAGES:
            voice = Voice("", voice.rate_wpm, None, voice.vtl, voice.f0, voice.tempo, kokoro=kokoro.HELDOUT_VOICE)
        jid = f"hv_{lang}_{k:04d}"
        jobs.append(Job(jid, "speech", lang, sentences[lang][int(i)], key, voice.rate_wpm, voice.pitch, voice=voice,
                         channel=draw_channel(rng), seed=int(rng.integers(2**31))))
        splits[jid] = "heldout_voice"
    if include_songs:
        for name in list_songs():
            song = load_song(name)
            for lang in song.lyrics:
                if lang not in langs:
                    continue
                for v in range(song_variants):
                    voice = draw_voice(rng, (), perturb_p=1.0 if v else 0.0)
                    voice = Voice("", None, None, voice.vtl, 1.0, 1.0)  # songs: the melody sets pitch and tempo
                    jid = f"song_{name}_{lang}" + (f"_{v}" if v else "")
                    jobs.append(Job(jid, "song", lang, song.title, f"song:{name}", None, None, name, voice=voice,
                                     channel=draw_channel(rng) if v else Channel(), seed=int(rng.integers(2**31)),
                                     transpose=float(rng.integers(-7, 8)) if v else 0.0))
                    splits[jid] = "heldout_language" if lang in heldout_langs else "train"
    return jobs, splits
