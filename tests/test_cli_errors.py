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
    "lipsync": ["lipsync", str(WAV), "--out", "{}"],
    "lipsync --video": ["lipsync", str(WAV), "--out", "ok.npz", "--video", "{}"],
    "sing": ["sing", "twinkle", "--out", "{}"],
    "evaluate": ["evaluate", "--data", str(WAV.parent), "--methods", "rest", "--json", "{}"],
    "train-lipsync": ["train-lipsync", "--out", "{}"],
    "train-residual": ["train-residual", "--out", "{}"],
    "ingest-video": ["ingest-video", str(WAV), "--corpus", "{}"],
    "calibrate": ["calibrate", "--out", "{}"],
    "deploy": ["deploy", str(WAV), "--calibration", "nominal.json", "--backend", "sim", "--log", "{}"],
    "export-policy": ["export-policy", "run", "--out", "{}"],
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
])
def test_bad_numbers_are_refused_before_any_work(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and "Traceback" not in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written
