"""python -m blekota judge: made-up sound against its source, on sounds whose answer is known."""

import json

import numpy as np
import pytest

from blekota.audio import save_wav
from blekota.cli import main
from blekota.demo import demo_sound

FS = 8000


@pytest.fixture
def files(tmp_path):
    sound = demo_sound(FS)
    half = sound.size // 2
    rng = np.random.default_rng(0)
    paths = {
        "source": save_wav(tmp_path / "source.wav", sound[:half], FS),
        "alike": save_wav(tmp_path / "alike.wav", sound[half:], FS),
        "hiss": save_wav(tmp_path / "hiss.wav", 0.2 * rng.standard_normal(half).astype(np.float32), FS),
        "silent": save_wav(tmp_path / "silent.wav", np.zeros(half, np.float32), FS),
        "short": save_wav(tmp_path / "short.wav", sound[: FS // 2], FS),
    }
    return {name: str(path) for name, path in paths.items()}


def judged(capsys, *args):
    assert main(["judge", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_source_itself_is_near_and_hiss_far(files, capsys):
    result = judged(capsys, files["source"], files["alike"], files["hiss"])
    source, alike, hiss, both = result["rows"]
    assert result["fs"] == FS
    assert [row["sound"] for row in result["rows"]] == ["source.wav (source)", files["alike"], files["hiss"], "all 2"]
    assert alike["fd"] < 0.1 * hiss["fd"]
    assert source["floor"] < source["ceiling"] and source["levels_floor"] > 0
    assert alike["flatness"] < 0.05 < 0.5 < hiss["flatness"]
    # hiss is far in its average spectrum as well as in how little it varies; the source row has no part
    assert 0 < hiss["fd_average"] < hiss["fd"] and source["fd_average"] is None
    assert hiss["variety_db"] < alike["variety_db"]
    assert alike["quiet_share"] == pytest.approx(source["quiet_share"], abs=0.1) and hiss["quiet_share"] == 0
    # each file's floor is the source's at that file's length; together, at the length of both
    assert alike["floor"] == hiss["floor"] and both["floor"] == source["floor"]


def test_measures_without_a_value_are_null(files, capsys):
    _, silent = judged(capsys, files["source"], files["silent"])["rows"]
    assert silent["quiet_share"] == 1 and silent["flatness"] is None and silent["pitch_hz"] is None


def test_the_table_names_every_sound_and_explains_its_columns(files, capsys):
    assert main(["judge", files["source"], files["alike"]]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].split()[:3] == ["sound", "distance", "floor"]
    assert lines[2].startswith("source.wav (source)") and lines[3].startswith(files["alike"])
    assert "Fréchet" in captured.out
    assert "made-up sound" in captured.err  # under 15 s: the distance is a lottery, and it says so


def test_a_sound_too_short_to_judge_is_one_line_naming_it(files, capsys):
    assert main(["judge", files["source"], files["short"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and files["short"] in err and "too short" in err
    assert main(["judge", files["source"], files["short"] + ".missing"]) == 2
    assert ".missing" in capsys.readouterr().err
    assert main(["judge", files["source"] + ".missing", files["short"]]) == 2  # SOURCE's problem first
    assert capsys.readouterr().err == f"blekota: error: {files['source']}.missing: no such file\n"


def test_a_made_up_sound_given_twice_is_one_line(files, capsys):
    again = files["alike"].replace("alike.wav", "./alike.wav")
    assert main(["judge", files["source"], files["alike"], files["hiss"], again]) == 2
    assert capsys.readouterr().err == (f"blekota: error: {again}: given twice among MADE ({files['alike']}); the row "
                                       "of all of them would count it twice\n")


def test_a_rate_resamples_every_sound(files, capsys):
    result = judged(capsys, files["source"], files["alike"], "--fs", "16000")
    assert result["fs"] == 16000 and result["rows"][1]["fd"] >= 0


def test_a_low_rate_is_judged_not_a_traceback(files, capsys):
    result = judged(capsys, files["source"], files["alike"], "--fs", "100")
    assert result["fs"] == 100 and result["rows"][1]["pitch_hz"] is None


def test_a_rate_too_low_to_judge_is_one_line_naming_it(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["judge", files["source"], files["alike"], "--fs", "10"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "argument --fs: expected a sample rate in 50.." in err
    low = str(save_wav(tmp_path / "low.wav", np.zeros(80, np.float32), 40))  # 2 s at 40 Hz
    assert main(["judge", files["source"], low]) == 2
    err = capsys.readouterr().err
    assert err == f"blekota: error: {low}: 40 Hz is too low a rate to judge at (at least 50 Hz); give --fs\n"
