"""The speech commands: ``facetwin say``, ``sing-audio``, ``align``, ``corpus build``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .table import Command, command

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below


def _timeline_path(out: Path) -> Path:
    return out.with_name(out.stem + ".phones.json")


def _write_utterance(utt, out: str) -> Path:
    from facetwin.audio.io import save_wav

    path = Path(out)
    save_wav(path, utt.audio, utt.sr)
    tl = utt.timeline.save(_timeline_path(path))
    dur = len(utt.audio) / utt.sr
    print(f"wrote {path} ({dur:.2f} s, {utt.sr} Hz) and {tl} ({len(utt.timeline)} phones)")
    print("  " + " ".join(p.phoneme for p in utt.timeline.phones[:40]) + (" ..." if len(utt.timeline) > 40 else ""))
    return path


def add_say_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text")
    parser.add_argument("--lang", default="en", help="ISO 639-1 language code (default: en)")
    parser.add_argument("--out", default="say.wav", help="output wav; the timeline goes to <out>.phones.json")
    parser.add_argument("--rate", type=int, default=None, help="speaking rate, words per minute")
    parser.add_argument("--pitch", type=int, default=None, help="voice pitch 0-100")


@command(COMMANDS, "say", add_say_arguments, "speak a text offline (espeak-ng) to a wav plus its phoneme timeline")
def cmd_say(args: argparse.Namespace) -> int:
    from facetwin.audio.tts import synthesize

    utt = synthesize(args.text, args.lang, rate_wpm=args.rate, pitch=args.pitch)
    _write_utterance(utt, args.out)
    return 0


def add_sing_audio_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("song", nargs="?", help="song name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the built-in songs")
    parser.add_argument("--lang", default=None, help="lyrics language (default: the song's first)")
    parser.add_argument("--tempo", type=float, default=None, help="tempo in beats per minute")
    parser.add_argument("--transpose", type=int, default=0, help="semitones")
    parser.add_argument("--out", default="song.wav", help="output wav; the timeline goes to <out>.phones.json")


@command(COMMANDS, "sing-audio", add_sing_audio_arguments, "sing a built-in song to a wav plus its phoneme timeline")
def cmd_sing_audio(args: argparse.Namespace) -> int:
    from facetwin.audio.sing import sing
    from facetwin.audio.songs import list_songs, load_song

    if args.list or not args.song:
        for name in list_songs():
            song = load_song(name)
            print(f"  {name:<16} {song.title}  (lyrics: {', '.join(song.lyrics)})")
        return 0 if args.list else 2
    utt = sing(args.song, lang=args.lang, tempo_bpm=args.tempo, transpose=args.transpose)
    _write_utterance(utt, args.out)
    return 0


def add_align_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio")
    parser.add_argument("--text", required=True, help="the transcript")
    parser.add_argument("--out", default=None, help="timeline json (default: <audio>.phones.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing timeline json")


@command(COMMANDS, "align", add_align_arguments, "forced-align an English recording with its transcript")
def cmd_align(args: argparse.Namespace) -> int:
    from facetwin.audio.align import align_file

    out = Path(args.out) if args.out else _timeline_path(Path(args.audio))
    if out.exists() and not args.overwrite:  # e.g. the exact timeline `facetwin say` wrote for this file
        raise ValueError(f"--out {out} exists (the timeline of {Path(args.audio).name}?); give --overwrite to replace it")
    timeline = align_file(args.audio, args.text)
    timeline.save(out)
    print(f"wrote {out} ({len(timeline)} phones, {timeline.end:.2f} s)")
    return 0


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """``facetwin corpus ACTION``: its actions (``build``) are subcommands."""
    cosub = parser.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    cb = cosub.add_parser("build", help="build a multi-language corpus of speech and songs with lip targets")
    cb.add_argument("--out", default="facetwin_corpus", help="output folder (default: ./facetwin_corpus)")
    cb.add_argument("-n", type=int, default=110, help="number of spoken utterances (default: 110)")
    cb.add_argument("--langs", default=None, help="comma-separated ISO 639-1 codes (default: all 11)")
    cb.add_argument("--heldout-langs", default="he", help="comma-separated held-out languages (default: he)")
    cb.add_argument("--heldout-fraction", type=float, default=0.15, help="held-out share of sentences (0.15)")
    cb.add_argument("--no-songs", action="store_true", help="speech only")
    cb.add_argument("--seed", type=int, default=0)
    cb.add_argument("--voices", choices=("default", "diverse"), default="default",
                    help="default: each language's espeak-ng voice; diverse: a drawn voice and channel per item "
                         "(speaker variants, WORLD perturbation, noise, reverberation, band limits)")
    cb.add_argument("--heldout-voices", type=int, default=0,
                    help="with --voices diverse: items by held-out voices reading held-out sentences (default 0)")
    cb.add_argument("--salad-fraction", type=float, default=0.0,
                    help="with --voices diverse: share of word salads of real words (default 0)")
    cb.add_argument("--kokoro-fraction", type=float, default=0.0,
                    help="with --voices diverse: share spoken by the Kokoro-82M neural voice ([voices] extra; default 0)")
    cb.add_argument("--song-variants", type=int, default=1, help="times each song is sung (default 1)")
    cb.add_argument("--workers", type=int, default=1, help="workers (same files for any count; default 1)")
    cb.add_argument("--executor", choices=("process", "ray"), default="process",
                    help="process: worker processes on this machine (default); ray: Ray tasks ([scale] extra)")
    cb.add_argument("--address", default=None, help="with --executor ray: the cluster (HEAD:6379, auto)")
    cb.set_defaults(func=cmd_corpus_build)


@command(COMMANDS, "corpus", add_corpus_arguments, "training corpus tools")
def cmd_corpus_build(args: argparse.Namespace) -> int:
    from facetwin.audio.corpus import build_corpus

    langs = args.langs.split(",") if args.langs else None
    heldout = [x for x in args.heldout_langs.split(",") if x] if args.heldout_langs else []
    manifest = build_corpus(
        args.out, args.n, langs=langs, heldout_langs=heldout, heldout_fraction=args.heldout_fraction,
        include_songs=not args.no_songs, seed=args.seed, voices=args.voices, salad_fraction=args.salad_fraction,
        n_heldout_voice=args.heldout_voices, song_variants=args.song_variants, kokoro_fraction=args.kokoro_fraction,
        workers=args.workers, executor=args.executor, address=args.address,
    )
    sizes = {k: len(v) for k, v in manifest["splits"].items()}
    print(f"corpus in {args.out}: {len(manifest['items'])} items, {manifest['total_duration_s']:.1f} s of audio, "
          f"{len(manifest['languages'])} languages; splits {sizes}")
    return 0
