"""Every CLI command through the bad outputs a careful user can give: one line on stderr naming the option and the
path, exit code 2, no traceback, nothing written, no input touched; internal errors and Ctrl-C end in one line too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facetwin.cli import OUTPUTS, main

WAV = Path(__file__).parent / "data" / "human_subset" / "06_en.wav"

#: each command with the arguments it needs besides the output under test ({} is replaced by the bad path)
COMMANDS = {
    "demo": ["demo", "--out", "{}"],
    "export-xml": ["export-xml", "--out", "{}"],
    "say": ["say", "hello", "--out", "{}"],
    "sing-audio": ["sing-audio", "twinkle", "--out", "{}"],
    "align": ["align", str(WAV), "--text", "hello", "--out", "{}"],
    "corpus build": ["corpus", "build", "--out", "{}", "-n", "2"],
    "babble": ["babble", "-n", "10", "--out", "{}"],
    "train": ["train", "--steps", "100", "--out", "{}"],
    "sweep": ["sweep", "sweep.toml", "--out", "{}"],
    "lipsync": ["lipsync", str(WAV), "--out", "{}"],
    "lipsync --video": ["lipsync", str(WAV), "--out", "ok.npz", "--video", "{}"],
    "sing": ["sing", "twinkle", "--out", "{}"],
    "evaluate": ["evaluate", "--data", str(WAV.parent), "--methods", "rest", "--json", "{}"],
    "train-lipsync": ["train-lipsync", "--out", "{}"],
    "train-residual": ["train-residual", "--out", "{}"],
    "ingest-video": ["ingest-video", str(WAV), "--corpus", "{}"],
    "calibrate": ["calibrate", "--out", "{}"],
    "deploy": ["deploy", str(WAV), "--calibration", "nominal.json", "--backend", "sim", "--log", "{}"],
    "live": ["live", str(WAV), "--log", "{}"],
    "export-policy": ["export-policy", "run", "--out", "{}"],
    "train-self-model": ["train-self-model", "--babble", "b.npz", "--out", "{}"],
    "build-lip-shapes": ["build-lip-shapes", "--out", "{}"],
    "build-face": ["build-face", "--mesh", "face.obj", "--out", "{}"],
}


def test_every_command_with_an_output_is_in_the_table():
    keys = {k.split(" --")[0] for k in COMMANDS}
    assert keys == set(OUTPUTS)


def _bad_paths(tmp: Path, kind: str, suffix: str | None) -> dict[str, Path]:
    """Paths that cannot be written: an existing folder given for a file (or a file given for a folder), a path
    under a file, a missing suffix."""
    a_file = tmp / "a_file.txt"
    a_file.write_text("keep me")
    a_dir = tmp / "a_dir"
    a_dir.mkdir(exist_ok=True)
    ext = suffix or ".out"
    bad = {"under a file": a_file / f"x{ext}"}
    bad["a folder" if kind == "file" else "a file"] = a_dir if kind == "file" else a_file
    if suffix:
        bad["wrong suffix"] = tmp / "x.wrong"
    return bad


def _output(name: str) -> tuple[str, str, str | None]:
    """(option, kind, suffix) of the output a COMMANDS entry puts under test."""
    key = name.split(" --")[0]
    field = name.split(" --")[1] if " --" in name else next(iter(OUTPUTS[key]))
    return (field, *OUTPUTS[key][field])


CASES = [(name, what) for name in COMMANDS
         for what in ("under a file", "a folder" if _output(name)[1] == "file" else "a file")
         + (("wrong suffix",) if _output(name)[2] else ())]


@pytest.mark.parametrize("name, what", CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_bad_output_paths_fail_fast_with_one_line(name, what, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    field, kind, suffix = _output(name)
    bad = _bad_paths(tmp_path, kind, suffix)
    path = bad[what]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    argv = [a.replace("{}", str(path)) for a in COMMANDS[name]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"--{field}" in err[0] and (str(path) in err[0] or path.name in err[0]), err[0]
    assert "Traceback" not in err[0]
    after = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    assert after == before  # nothing written, nothing overwritten


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import facetwin.cli as cli

    def boom(args):
        raise TypeError("unsupported operand")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser, boom))
    assert main(["info"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error: TypeError: unsupported operand" in err[0] and "--debug" in err[0]
    with pytest.raises(TypeError):
        main(["--debug", "info"])

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser, interrupted))
    assert main(["info"]) == 130
    assert capsys.readouterr().err.strip() == "facetwin info: interrupted"


def test_os_errors_name_the_path(monkeypatch, capsys):
    import facetwin.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/robot/calibration.json")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser, denied))
    assert main(["info"]) == 2
    assert capsys.readouterr().err.strip() == "facetwin info: error: /robot/calibration.json: Permission denied"
    assert os.environ.get("FACETWIN_DEBUG") is None


def _with_func(parser, func):
    """The real parser, with ``info`` running ``func``."""
    real = parser.parse_args

    class P:
        def parse_args(self, argv):
            args = real(argv)
            args.func = func
            return args

    return P()


@pytest.mark.parametrize("argv, option", [
    (["demo", "--seconds", "nan", "--out", "d"], "--seconds"),
    (["corpus", "build", "--heldout-fraction", "inf", "--out", "d"], "--heldout-fraction"),
    (["sing", "twinkle", "--tempo", "nan", "--out", "d.mp4"], "--tempo"),
    (["train-residual", "--scale=-inf", "--out", "d"], "--scale"),
    (["calibrate", "--noise-mm", "nan", "--out", "d.json"], "--noise-mm"),
    (["train", "--steps", "-5", "--out", "d"], "--steps"),
    (["train", "--hp", "learning_rate=\"abc\"", "--out", "d"], "--hp learning_rate"),
    (["train", "--hp", "warp=1", "--out", "d"], "--hp warp"),
    (["train", "--env", "nosuch", "--out", "d"], "--env"),
    (["train", "--env-arg", "nosuch=1", "--out", "d"], "--env-arg nosuch"),  # was a traceback per env worker
    (["export-policy", "run", "--env-arg", "x", "--out", "d"], "--env-arg"),
    (["deploy", str(WAV), "--calibration", "c.json", "--backend", "serial", "--port", "p", "--baudrate", "0"],
     "--baudrate"),
])
def test_bad_numbers_are_refused_before_any_work(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and "Traceback" not in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---------------------------------------------------------------------------------------------- malformed inputs
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _weights(tmp: Path, damaged: str) -> list[str]:
    import shutil

    from facetwin.agents.weights import shipped_weights_dir

    shutil.copytree(shipped_weights_dir(), tmp / "w")
    _truncate(tmp / "w" / damaged)
    return ["lipsync", str(WAV), "--weights", "w", "--out", "o.npz"]


def _calibration(tmp: Path, text: str) -> list[str]:
    (tmp / "cal.json").write_text(text, encoding="utf-8")
    return ["deploy", str(WAV), "--calibration", "cal.json", "--backend", "sim", "--log", "log.npz"]


def _nominal_with(**motor0) -> str:
    import json

    from facetwin.hardware.calibration import nominal_calibration

    d = nominal_calibration("sim").to_dict()
    d["motors"][0].update(motor0)
    return json.dumps(d)


def _safety(tmp: Path, text: str) -> list[str]:
    from facetwin.hardware.calibration import nominal_calibration

    nominal_calibration("sim").save(tmp / "cal.json")
    (tmp / "safety.json").write_text(text, encoding="utf-8")
    return ["deploy", str(WAV), "--calibration", "cal.json", "--backend", "sim", "--safety", "safety.json"]


def _junk_run(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "model.zip").write_bytes(b"not a zip at all")
    return ["export-policy", "run", "--out", "exported"]


def _corpus(tmp: Path, damage: str) -> list[str]:
    from facetwin.audio.corpus import build_corpus

    m = build_corpus(tmp / "k", n_utterances=2, seed=0, progress=False)
    if damage == "manifest":
        _truncate(tmp / "k" / "manifest.json")
    else:
        _truncate(tmp / "k" / m["items"][0]["data"])
    return ["evaluate", "--data", "k", "--splits", "all", "--methods", "rest", "--quiet"]


def _silent(tmp: Path) -> list[str]:
    import numpy as np

    from facetwin.audio.io import save_wav

    save_wav(tmp / "quiet.wav", np.zeros(16000, np.float32), 16000)
    return ["lipsync", "quiet.wav", "--out", "o.npz"]


#: case -> (makes the bad input in the folder and returns the argv, what the one line must name)
MALFORMED = {
    "truncated audio-to-lips weights": (lambda t: _weights(t, "audio_to_lips_offline.pt"),
                                        "w/audio_to_lips_offline.pt: not a valid audio-to-lips checkpoint"),
    "truncated self-model weights": (lambda t: _weights(t, "self_model.pt"), "w/self_model.pt: not a valid self-model"),
    "junk model.zip": (_junk_run, "run/model.zip: not a policy"),
    "calibration is a folder": (lambda t: (t / "cal.json").mkdir() or _calibration_args(), "cal.json"),
    "calibration nested 100,000 deep": (lambda t: _calibration(t, "[" * 100_000 + "]" * 100_000),
                                        "cal.json: not valid JSON"),
    "calibration with an infinite scale": (lambda t: _calibration(t, _nominal_with(scale=float("inf"))), "scale"),
    "calibration with a huge neutral": (lambda t: _calibration(t, _nominal_with(neutral=1e300)), "neutral"),
    "safety config nested deep": (lambda t: _safety(t, "{\"a\": " * 50_000 + "1" + "}" * 50_000),
                                  "safety.json: not valid JSON"),
    "safety config with NaN": (lambda t: _safety(t, '{"max_speed": NaN}'), "max_speed"),
    "damaged corpus manifest": (lambda t: _corpus(t, "manifest"), "k/manifest.json: damaged corpus manifest"),
    "damaged corpus item": (lambda t: _corpus(t, "item"), ".npz: damaged corpus item"),
    "silent recording": (_silent, "quiet.wav: silent"),
}


def _calibration_args() -> list[str]:
    return ["deploy", str(WAV), "--calibration", "cal.json", "--backend", "sim", "--log", "log.npz"]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_inputs_end_in_one_line_naming_the_file(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make, named = MALFORMED[case]
    argv = make(tmp_path)
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"facetwin {argv[0]}: error: "), err
    assert named in err[0] and "Traceback" not in err[0], err[0]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # nothing written, nothing touched
