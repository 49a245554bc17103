"""The twin performs a file: ``facetwin lipsync AUDIO`` (commands + measured face to ``.npz``, optional video) and
``facetwin sing SONG_OR_AUDIO`` (an mp4 of the twin singing, audio muxed in).

Both run the learned pipeline (:class:`facetwin.agents.lipsync.LipSyncer`) on the audio, in any language. A
transcript (``--text`` with ``--lang``, aligned to the recording by :func:`facetwin.audio.transcript.transcript_timeline`:
pocketsphinx for English, cross-lingual pocketsphinx on espeak-ng's phones for the other languages) or a built-in song's own
phonemes decide the seals, rounding, opening and the lip shapes; the audio fills the rest.

>>> lipsync_file("speech.wav", "speech.npz", video="speech.mp4")
>>> sing_file("twinkle", "twinkle.mp4", layout="side_by_side", plot=True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facetwin.audio.timeline import Timeline

from .behaviour import Behaviour, BehaviourConfig
from .lipsync import FPS, SR, LipSyncer, LipSyncResult, save_lipsync_npz

FEATURE_SR = SR


def _transcript_timeline(syncer: LipSyncer, audio: np.ndarray, sr: int, text: str | None,
                         lang: str | None) -> Timeline | None:
    if not text:
        return None
    return syncer.align_transcript(audio, sr, text, lang or "en")


def lipsync_file(audio_path: str | Path, out: str | Path, *, mode: str = "offline", text: str | None = None,
                 lang: str | None = None, variant: str = "fast", video: str | Path | None = None,
                 weights_dir: str | Path | None = None, behaviour: BehaviourConfig | None = None,
                 progress: bool = True) -> LipSyncResult:
    """Audio file -> commands -> simulated face -> ``out`` (.npz, :data:`facetwin.agents.lipsync.LIPSYNC_NPZ_KEYS`);
    ``video``: also an mp4 of the face with the audio; ``behaviour``: the behaviour layer on (eyes, brows, head,
    emotion: :mod:`facetwin.agents.behaviour`)."""
    from facetwin.audio.io import load_audio
    from facetwin.sim.model import FaceModel
    from facetwin.sim.playback import play

    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must be a .npz file, got {out}")
    if video is not None and Path(video).suffix != ".mp4":
        raise ValueError(f"--video must be an .mp4 file, got {video}")
    audio = load_audio(audio_path, FEATURE_SR)
    syncer = LipSyncer(mode, weights_dir=weights_dir)
    timeline = _transcript_timeline(syncer, audio, FEATURE_SR, text, lang)
    res = syncer.controls(audio, FEATURE_SR, timeline=timeline)
    res.meta["variant"] = variant
    with_behaviour(res, audio, FEATURE_SR, behaviour)
    if video is not None:
        from facetwin.sim.video import render_video

        vr = render_video(res.ctrl, video, audio=audio, sr=FEATURE_SR, fps=FPS, variant=variant, progress=progress)
        res.playback = vr.playback
    else:
        res.playback = play(FaceModel.load(variant), res.ctrl)
    save_lipsync_npz(out, res, audio=str(audio_path), text=text or "", lang=lang or "")
    return res


def with_behaviour(res: LipSyncResult, audio: np.ndarray, sr: int, config: BehaviourConfig | None) -> LipSyncResult:
    """``res`` with the behaviour layer on its commands (in place; noted in ``res.meta["behaviour"]``); unchanged
    when ``config`` is None."""
    if config is not None:
        res.ctrl = Behaviour(config).apply(res.ctrl, audio, sr)
        res.meta["behaviour"] = f"emotion {config.emotion} {config.emotion_intensity:g}, seed {config.seed}"
    return res


@dataclass
class Performance:
    """A rendered song: the commands and the video."""

    result: LipSyncResult
    video: object  # facetwin.sim.video.VideoResult
    timeline: Timeline | None
    audio: np.ndarray
    sr: int


def sing_file(song_or_audio: str | Path, out: str | Path, *, lang: str | None = None, lyrics: str | None = None,
              tempo_bpm: float | None = None, mode: str = "offline", layout: str = "mirror", plot: bool = False,
              variant: str = "fast", weights_dir: str | Path | None = None,
              behaviour: BehaviourConfig | None = None, progress: bool = True) -> Performance:
    """Render the twin singing a built-in song (by name) or any audio file into ``out`` (.mp4, audio muxed in).

    A built-in song is synthesized (:func:`facetwin.audio.sing.sing`) and its phonemes are known; an audio file can
    bring its ``lyrics`` (aligned to it, any language with ``lang``). ``plot`` adds a live plot of the face's aperture against the lip
    track of the phonemes (when known) or the audio model's target. ``behaviour``: the behaviour layer on (a
    built-in song's head follows its own tempo; an audio file's, the tracked beat).
    """
    from facetwin.audio.sing import sing
    from facetwin.audio.songs import list_songs, load_song
    from facetwin.sim.video import render_video

    out = Path(out)
    if out.suffix != ".mp4":
        raise ValueError(f"--out must be an .mp4 file, got {out}")
    name = str(song_or_audio)
    builtin = name in list_songs() and not Path(name).exists()
    if builtin:
        utt = sing(name, lang=lang, tempo_bpm=tempo_bpm)
        audio, sr, timeline = np.asarray(utt.audio, dtype=np.float64), int(utt.sr), utt.timeline
        if lyrics:
            raise ValueError("--lyrics is for audio files; a built-in song brings its own")
        if behaviour is not None and behaviour.tempo_bpm is None:
            behaviour = replace(behaviour, tempo_bpm=float(tempo_bpm or load_song(name).tempo_bpm), beat_offset_s=0.0)
    else:
        from facetwin.audio.io import load_audio

        if not Path(name).exists():
            raise FileNotFoundError(f"{name!r} is neither a built-in song ({', '.join(list_songs())}) nor an audio file")
        audio, sr = load_audio(name, FEATURE_SR), FEATURE_SR
    syncer = LipSyncer(mode, weights_dir=weights_dir)
    if not builtin:
        timeline = _transcript_timeline(syncer, audio, sr, lyrics, lang)
    res = syncer.controls(audio, sr, timeline=timeline)
    res.meta["variant"] = variant
    with_behaviour(res, audio, sr, behaviour)
    target = None
    if plot:
        if timeline is not None and len(timeline):
            from facetwin.audio.lip_track import lip_track

            target = lip_track(timeline, fps=FPS, duration=res.n_frames / FPS).aperture_mm[: res.n_frames]
        else:
            from facetwin.audio.lip_track import measures_from_landmarks

            target = np.asarray(measures_from_landmarks(res.target_lips_mm)["aperture_mm"])
    vr = render_video(res.ctrl, out, audio=audio, sr=sr, fps=FPS, variant=variant, layout=layout,
                      plot_target_aperture=target, progress=progress)
    res.playback = vr.playback
    return Performance(result=res, video=vr, timeline=timeline, audio=audio, sr=sr)


__all__ = ["Performance", "lipsync_file", "sing_file", "with_behaviour"]
