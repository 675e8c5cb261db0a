"""Every command but train and evaluate (each console script, and the commands without one):
``--help`` exits 0 and lists every key it declares; an unknown key, a value its key refuses or a
missing required key exits 2 with one paragraph naming the key and ``--help``, no traceback.
In-process: each command's ``main(argv)`` with SystemExit caught."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import ser.commands
from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

HYDRA_APPS = {"ser-train", "ser-evaluate"}
# Values each command's keys must refuse: not numbers, not finite, out of range, not a choice.
BAD = {
    "ser.commands.predict": ["hop=nan", "hop=abc", "hop=-1", "window=inf", "smooth=1.5",
                             "output=xml", "vad=loud", "min_speech=2", "min_confidence=0",
                             "min_confidence=1.5", "min_confidence=nan", "min_confidence=abc"],
    "ser.commands.listen": ["hop=nan", "window=0", "realtime=maybe", "rate=abc", "min_confidence=1",
                            "min_confidence=nan"],
    "ser.commands.serve": ["port=abc", "port=70000", "hop=inf", "max_upload_mb=nan",
                           "min_confidence=0", "min_confidence=abc"],
    "ser.commands.export": ["opset=abc", "opset=nan"],
    "ser.commands.bench": ["trunk_chunk=nan", "quick=maybe", "device=tpu", "load_seconds=inf"],
    "ser.commands.figure2": ["snr=nan", "offset=-1", "block_seconds=0"],
    "ser.commands.speech_census": ["min_speech=2", "min_speech=nan", "vad=none", "sample_rate=x"],
    "ser.commands.bench_speech": ["steps=0", "mode=all", "tiny=perhaps"],
}


def console_commands() -> list[str]:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return sorted(target.partition(":")[0] for name, target in scripts.items() if name not in HYDRA_APPS)


def spec_commands() -> list[str]:
    """Every module of ser.commands that declares a Spec."""
    names = [f"ser.commands.{m.name}" for m in pkgutil.iter_modules(ser.commands.__path__)]
    return sorted(n for n in names if hasattr(importlib.import_module(n), "SPEC"))


COMMANDS = sorted(set(console_commands()) | set(spec_commands()))


def run(module: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``module.main(argv)`` in this process."""
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


def assert_one_paragraph(err: str, *words: str) -> None:
    text = err.strip()
    assert text.startswith("error:") and text.count("error:") == 1, err
    assert "Traceback" not in err and "\n\n" not in text, err
    flat = " ".join(text.split())
    for word in words:
        assert word in flat, f"{word!r} not in: {flat}"


def test_every_console_script_but_the_hydra_apps_is_a_spec_command_and_has_bad_values():
    assert set(console_commands()) <= set(spec_commands())
    assert set(console_commands()) == {f"ser.commands.{c}" for c in
                                       ("predict", "listen", "serve", "export", "bench", "figure2")}
    assert set(BAD) == set(COMMANDS)


@pytest.mark.parametrize("module", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0_and_lists_every_key(module, flag, capsys):
    command = importlib.import_module(module)
    code, out, err = run(module, [flag], capsys)
    assert code == 0 and err == ""
    assert command.SPEC.purpose in out and f"python -m {command.COMMAND}" in out
    for key in command.SPEC.keys:
        assert f"  {key.name}=" in out and key.help in " ".join(out.split())


@pytest.mark.parametrize("module", COMMANDS)
def test_an_unknown_key_exits_2_in_one_paragraph(module, capsys):
    command = importlib.import_module(module)
    for argv in (["colour=red"], ["--colour", "red"]):
        code, out, err = run(module, argv, capsys)
        assert code == 2
        assert_one_paragraph(err, "Unknown argument", argv[0], f"python -m {command.COMMAND} --help")


@pytest.mark.parametrize("module", COMMANDS)
def test_a_value_its_key_refuses_exits_2_in_one_paragraph(module, capsys):
    command = importlib.import_module(module)
    for word in BAD[module]:
        key, _, value = word.partition("=")
        code, out, err = run(module, [word], capsys)
        assert code == 2, word
        assert_one_paragraph(err, f"{key}={value!r}: {key}= takes", f"python -m {command.COMMAND} --help")


def required_keys(module: str) -> list[str]:
    from ser.cli import REQUIRED

    return [k.name for k in importlib.import_module(module).SPEC.keys if k.default is REQUIRED]


@pytest.mark.parametrize("module", [m for m in COMMANDS if required_keys(m)])  # the rest would run
def test_a_missing_required_key_exits_2_in_one_paragraph(module, capsys):
    command = importlib.import_module(module)
    code, out, err = run(module, [], capsys)
    assert code == 2
    assert_one_paragraph(err, f"{command.COMMAND} needs", *(f"({name}=)" for name in required_keys(module)))


def test_the_parser_reads_defaults_empty_values_and_the_older_forms():
    from ser.cli import REQUIRED, Key, Spec, number, optional, parse, switch
    from ser.errors import SerError

    spec = Spec("a test", (Key("path", REQUIRED, "a path", positional=True),
                           Key("hop", 0.25, "seconds", number(float, above=0)),
                           Key("window", None, "seconds", optional(number(float, above=0))),
                           Key("quick", False, "tiny", switch)))
    assert parse(["path=a"], spec, "t") == {"path": "a", "hop": 0.25, "window": None, "quick": False}
    got = parse(["a", "hop=", "window=none", "--quick"], spec, "t")
    assert got == {"path": "a", "hop": 0.25, "window": None, "quick": True}
    assert parse(["--path", "b=c", "--hop=0.5", "window=1"], spec, "t") == {
        "path": "b=c", "hop": 0.5, "window": 1.0, "quick": False}
    for argv, message in [(["a", "b"], "Unknown argument 'b'"), (["a", "-x"], "Unknown argument '-x'"),
                          (["a", "--hop"], "--hop needs a value"), (["path="], "t needs a path (path=)"),
                          (["a", "hop=1e999"], "hop='1e999': hop= takes a finite number > 0")]:
        with pytest.raises(SerError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse(argv, spec, "t")


@pytest.mark.parametrize("script,override,words", [
    ("train.py", "calibration.nope=1", ["`calibration` has no key `nope`", "class_shift"]),
    ("train.py", "calibratio=vector", ["the top level has no key `calibratio`", "calibration"]),
    ("train.py", "calibration=foo", ["no 'calibration/foo'", "noise_aware"]),
    ("train.py", "optim.lr=[", ["cannot read the overrides"]),
    ("evaluate.py", "ckp=RUN", ["the top level has no key `ckp`", "ckpt"]),
])
def test_a_hydra_command_refuses_a_bad_override_in_one_paragraph_with_exit_2(script, override, words,
                                                                             tmp_path):
    """train.py and evaluate.py fail as every other command does: before any work, one
    paragraph naming the override and what the config holds there, exit status 2."""
    from tests.conftest import run_script

    sweep = ["fold=0,1"] if script == "train.py" else ["smooth=0,2"]  # checked with its first value
    done = run_script(script, [*sweep, override], cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_paragraph(done.stderr, override, *words)
    assert "Traceback" not in done.stderr and not (tmp_path / "outputs").exists()
