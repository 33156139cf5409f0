"""Tests for helpers.labels: reading and writing Audacity label files."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.config import PLOP_LABEL
from helpers.labels import (
    LabelError,
    empty_events,
    labels_path_for,
    parse_labels,
    read_labels,
    write_labels,
)


def write_bytes(tmp_path, content: bytes, name: str = "labels.txt"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def write_text(tmp_path, content: str, name: str = "labels.txt"):
    return write_bytes(tmp_path, content.encode("utf-8"), name)


def assert_core_frame(events: pd.DataFrame) -> None:
    assert list(events.columns[:3]) == ["start", "end", "label"]
    assert events["start"].dtype == np.float64
    assert events["end"].dtype == np.float64
    assert pd.api.types.is_string_dtype(events["label"]) or events["label"].dtype == object
    assert events.index.equals(pd.RangeIndex(len(events)))
    assert events["start"].is_monotonic_increasing


# ----------------------------------------------------------------------------- reading


def test_tab_separated(tmp_path):
    path = write_text(tmp_path, "0.500000\t0.750000\tp\n2.125000\t2.500000\tp\n")
    events = read_labels(path)
    assert_core_frame(events)
    assert list(events.columns) == ["start", "end", "label"]
    assert events["start"].tolist() == [0.5, 2.125]
    assert events["end"].tolist() == [0.75, 2.5]
    assert events["label"].tolist() == ["p", "p"]


def test_accepts_str_path_and_open_file(tmp_path):
    path = write_text(tmp_path, "1\t2\tp\n")
    assert read_labels(str(path))["start"].tolist() == [1.0]
    with open(path, encoding="utf-8") as handle:
        assert read_labels(handle)["end"].tolist() == [2.0]
    with open(path, "rb") as handle:
        assert read_labels(handle)["label"].tolist() == ["p"]


def test_point_labels(tmp_path):
    events = read_labels(write_text(tmp_path, "3.25\t3.25\tp\n1.0\t1.0\tclick\n"))
    assert events["start"].tolist() == [1.0, 3.25]
    assert (events["start"] == events["end"]).all()
    assert events["label"].tolist() == ["click", "p"]


def test_sorted_by_start_with_fresh_index(tmp_path):
    events = read_labels(write_text(tmp_path, "5\t6\tc\n1\t2\ta\n5\t5.5\td\n3\t4\tb\n"))
    assert events["label"].tolist() == ["a", "b", "c", "d"]  # ties keep file order
    assert events.index.tolist() == [0, 1, 2, 3]


def test_spectral_lines(tmp_path):
    text = (
        "1.000000\t1.100000\tp\n"
        "\\\t300.000000\t4200.500000\n"
        "2.000000\t2.100000\tp\n"
        "3.000000\t3.100000\tp\n"
        "\\\t-1.000000\t800.000000\n"
    )
    events = read_labels(write_text(tmp_path, text))
    assert_core_frame(events)
    assert list(events.columns) == ["start", "end", "label", "low_hz", "high_hz"]
    assert events.loc[0, ["low_hz", "high_hz"]].tolist() == [300.0, 4200.5]
    assert events.loc[1, ["low_hz", "high_hz"]].isna().all()
    assert math.isnan(events.loc[2, "low_hz"])  # -1 is Audacity's "undefined"
    assert events.loc[2, "high_hz"] == 800.0


def test_spectral_line_follows_its_label_after_sorting(tmp_path):
    events = read_labels(write_text(tmp_path, "5\t6\tlate\n\\\t10\t20\n1\t2\tearly\n"))
    assert events["label"].tolist() == ["early", "late"]
    assert math.isnan(events.loc[0, "low_hz"])
    assert events.loc[1, ["low_hz", "high_hz"]].tolist() == [10.0, 20.0]


def test_no_spectral_columns_without_spectral_lines(tmp_path):
    events = read_labels(write_text(tmp_path, "1\t2\tp\n"))
    assert "low_hz" not in events and "high_hz" not in events


def test_decimal_commas(tmp_path):
    events = read_labels(write_text(tmp_path, "1,234567\t2,5\tp\n\\\t100,5\t2000,25\n"))
    assert events["start"].tolist() == [1.234567]
    assert events["end"].tolist() == [2.5]
    assert events.loc[0, ["low_hz", "high_hz"]].tolist() == [100.5, 2000.25]


@pytest.mark.parametrize("line", ["1\t2", "1\t2\t", "1\t2\t   ", "1 2", "1\t2\t\t"])
def test_missing_label_text_uses_default(tmp_path, line):
    path = write_text(tmp_path, line + "\n")
    assert read_labels(path)["label"].tolist() == [PLOP_LABEL]
    assert read_labels(path, default_label="event")["label"].tolist() == ["event"]


def test_label_text_with_spaces_and_tabs_kept(tmp_path):
    events = read_labels(write_text(tmp_path, "1\t2\tbig plop\n3\t4\tp\tsecond\tpart\n"))
    assert events["label"].tolist() == ["big plop", "p\tsecond\tpart"]


def test_space_separated_lines_without_tabs(tmp_path):
    events = read_labels(write_text(tmp_path, "1.5   2.5 two  words\n3 4\n"))
    assert events["start"].tolist() == [1.5, 3.0]
    assert events["label"].tolist() == ["two  words", PLOP_LABEL]


def test_crlf_line_ends(tmp_path):
    path = write_bytes(tmp_path, b"1\t2\tp\r\n\\\t10\t20\r\n3\t4\tq\r\n")
    events = read_labels(path)
    assert events["label"].tolist() == ["p", "q"]
    assert events.loc[0, "high_hz"] == 20.0


def test_byte_order_mark(tmp_path):
    path = write_bytes(tmp_path, b"\xef\xbb\xbf1.5\t2\tp\n")
    assert read_labels(path)["start"].tolist() == [1.5]
    assert parse_labels("\ufeff1.5\t2\tp\n")["start"].tolist() == [1.5]


def test_blank_lines_and_trailing_whitespace(tmp_path):
    text = "\n\n1\t2\tp   \n   \n\t\n3\t4\tq\t \n\n"
    events = read_labels(write_text(tmp_path, text))
    assert events["label"].tolist() == ["p", "q"]


def test_non_ascii_labels(tmp_path):
    events = read_labels(write_text(tmp_path, "1\t2\tblubb ü 泡\n"))
    assert events["label"].tolist() == ["blubb ü 泡"]


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n"])
def test_empty_file(tmp_path, content):
    events = read_labels(write_bytes(tmp_path, content))
    assert len(events) == 0
    assert list(events.columns) == ["start", "end", "label"]
    assert_core_frame(events)


def test_empty_events_helper():
    events = empty_events()
    assert len(events) == 0
    assert_core_frame(events)
    assert list(events.columns) == ["start", "end", "label"]


def test_missing_file(tmp_path):
    (tmp_path / "brew1.wav").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as caught:
        read_labels(tmp_path / "brew1.txt")
    message = str(caught.value)
    assert "brew1.txt" in message
    assert "beside the audio" in message and "same stem" in message and ".txt" in message
    assert "brew1.wav" in message  # points at the audio it found


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist either"):
        read_labels(tmp_path / "nowhere" / "brew1.txt")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1\t2\tp\n\n2.5\t1.0\tp\n", 3, "start 2.5 is after end 1.0"),
        ("1\t2\tp\n-0.5\t1\tp\n", 2, "start -0.5 is negative"),
        ("0\t-1\tp\n", 1, "end -1 is negative"),
        ("1\t2\n1\t2\nabc\t2\tp\n", 3, "start 'abc' is not a number"),
        ("1\t2\n1\tx2\tp\n", 2, "end 'x2' is not a number"),
        ("1.2.3\t4\tp\n", 1, "start '1.2.3' is not a number"),
        ("1\t\tp\n", 1, "the end is missing"),
        ("1\n", 1, "no end time"),
        ("nan\t1\tp\n", 1, "start 'nan' is not a finite number"),
        ("0\tinf\tp\n", 1, "end 'inf' is not a finite number"),
        ("0\t-Infinity\tp\n", 1, "end '-Infinity' is not a finite number"),
        ("0\t1e999\tp\n", 1, "end '1e999' is too large"),
        ("\n\\\t100\t200\n1\t2\tp\n", 2, "spectral-selection line with no label line before it"),
        ("1\t2\tp\n\\\tlow\t200\n", 2, "low frequency 'low' is not a number"),
        ("1\t2\tp\n\\\t100\tnan\n", 2, "high frequency 'nan' is not a finite number"),
        ("1\t2\tp\n\\\t100\n", 2, "exactly two frequencies"),
        ("1\t2\tp\n\\\t100\t200\t300\n", 2, "exactly two frequencies"),
        ("1\t2\tp\n\\\t-5\t200\n", 2, "low frequency -5 is negative"),
        ("1\t2\tp\n\\\t500\t200\n", 2, "low frequency 500 is above high frequency 200"),
        ("1\t2\tp\n\\\t1\t2\n\\\t1\t2\n", 3, "second spectral-selection line for the label on"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, line, fragment):
    path = write_text(tmp_path, text)
    with pytest.raises(LabelError) as caught:
        read_labels(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert fragment in message
    assert caught.value.line == line
    assert caught.value.source == str(path)


def test_error_line_numbers_count_crlf_lines_once(tmp_path):
    path = write_bytes(tmp_path, b"1\t2\tp\r\n\r\n3\t2\tp\r\n")
    with pytest.raises(LabelError, match=r"labels\.txt, line 3: start 3 is after end 2"):
        read_labels(path)


def test_error_message_example_and_hint():
    with pytest.raises(LabelError) as caught:
        parse_labels("0\t1\tp\n1\t2\tp\n2.5\t1.0\tp\n", source="labels.txt")
    message = str(caught.value)
    assert message.startswith("labels.txt, line 3: start 2.5 is after end 1.0. ")
    assert "Swap" in message  # says what to do
    assert isinstance(caught.value, ValueError)


def test_parse_labels_default_source():
    with pytest.raises(LabelError, match=r"^<text>, line 1: "):
        parse_labels("x\t1\n")


def test_parse_labels_rejects_bytes():
    with pytest.raises(TypeError, match="read_labels"):
        parse_labels(b"1\t2\tp\n")  # type: ignore[arg-type]


def test_not_utf8(tmp_path):
    path = write_bytes(tmp_path, b"1\t2\tp\n3\t4\tbl\xfcbb\n")
    with pytest.raises(LabelError, match=r"labels\.txt, line 2: byte 0xfc is not UTF-8.*UTF-8"):
        read_labels(path)


def test_label_error_pickles():
    error = LabelError("x.txt, line 2: bad", source="x.txt", line=2)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.line == 2 and copy.source == "x.txt"


# ----------------------------------------------------------------------------- writing


def test_write_format(tmp_path):
    events = pd.DataFrame(
        {
            "start": [2.0, 0.5],
            "end": [2.25, 0.5],
            "label": ["p", "big plop"],
            "probability": [0.9, 0.8],
        }
    )
    path = write_labels(events, tmp_path / "brew1.txt")
    assert path == tmp_path / "brew1.txt"
    assert path.read_bytes() == (
        b"0.500000\t0.500000\tbig plop\n2.000000\t2.250000\tp\n"
    )


def test_write_precision_and_default_label(tmp_path):
    events = pd.DataFrame({"start": [1.23456], "end": [2.0]})
    path = write_labels(events, tmp_path / "a.txt", precision=2)
    assert path.read_text(encoding="utf-8") == f"1.23\t2.00\t{PLOP_LABEL}\n"
    path = write_labels(events, tmp_path / "b.txt", precision=0, default_label="x")
    assert path.read_text(encoding="utf-8") == "1\t2\tx\n"


def test_write_missing_and_empty_labels_become_default(tmp_path):
    times = [1.0, 2.0, 3.0]
    events = pd.DataFrame({"start": times, "end": times, "label": [None, "", np.nan]})
    path = write_labels(events, tmp_path / "a.txt")
    assert read_labels(path)["label"].tolist() == [PLOP_LABEL] * 3
    assert path.read_text(encoding="utf-8").splitlines()[0].endswith(f"\t{PLOP_LABEL}")


def test_write_utf8_without_bom_and_lf(tmp_path):
    events = pd.DataFrame({"start": [1.0], "end": [2.0], "label": ["ü"]})
    data = write_labels(events, tmp_path / "a.txt").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in data
    assert data == "1.000000\t2.000000\tü\n".encode("utf-8")


def test_write_creates_folders_and_leaves_no_temp_files(tmp_path):
    events = pd.DataFrame({"start": [1.0], "end": [2.0]})
    path = write_labels(events, str(tmp_path / "deep" / "er" / "brew1.txt"))
    assert path.read_text(encoding="utf-8").startswith("1.000000\t2.000000")
    write_labels(events.assign(start=0.0), path)  # replaces the old file
    assert path.read_text(encoding="utf-8").startswith("0.000000\t2.000000")
    assert os.listdir(path.parent) == ["brew1.txt"]


def test_write_failure_keeps_old_file(tmp_path):
    path = write_text(tmp_path, "1\t2\tp\n")
    with pytest.raises(ValueError):
        write_labels(pd.DataFrame({"start": [3.0], "end": [1.0]}), path)
    assert path.read_text(encoding="utf-8") == "1\t2\tp\n"
    assert os.listdir(tmp_path) == ["labels.txt"]


def test_write_empty_events(tmp_path):
    path = write_labels(empty_events(), tmp_path / "none.txt")
    assert path.read_bytes() == b""
    events = read_labels(path)
    assert len(events) == 0 and list(events.columns) == ["start", "end", "label"]


def test_write_spectral_lines(tmp_path):
    events = pd.DataFrame(
        {
            "start": [1.0, 2.0, 3.0],
            "end": [1.5, 2.5, 3.5],
            "label": ["p", "p", "p"],
            "low_hz": [100.0, np.nan, np.nan],
            "high_hz": [3000.0, np.nan, 800.0],
        }
    )
    path = write_labels(events, tmp_path / "a.txt", precision=1)
    assert path.read_text(encoding="utf-8") == (
        "1.0\t1.5\tp\n\\\t100.0\t3000.0\n2.0\t2.5\tp\n3.0\t3.5\tp\n\\\t-1.0\t800.0\n"
    )


def test_round_trip(tmp_path):
    events = pd.DataFrame(
        {
            "start": [0.0, 1.2345678, 10.5, 99999.999999],
            "end": [0.0, 1.3, 10.75, 100000.0],
            "label": ["p", "big plop", "ü", "p"],
            "low_hz": [np.nan, 120.25, np.nan, 0.0],
            "high_hz": [np.nan, 4000.0, 700.0, 8000.0],
        }
    )
    back = read_labels(write_labels(events, tmp_path / "rt.txt"))
    assert list(back.columns) == ["start", "end", "label", "low_hz", "high_hz"]
    for column in ("start", "end", "low_hz", "high_hz"):
        np.testing.assert_allclose(back[column], events[column], rtol=0, atol=1e-6)
    assert back["label"].tolist() == events["label"].tolist()


def test_write_accepts_dcase_column_names(tmp_path):
    events = pd.DataFrame({"onset": [2.0, 1.0], "offset": [3.0, 1.5], "event_label": ["p", "q"]})
    back = read_labels(write_labels(events, tmp_path / "dcase.txt"))
    assert back["start"].tolist() == [1.0, 2.0]
    assert back["end"].tolist() == [1.5, 3.0]
    assert back["label"].tolist() == ["q", "p"]


def test_write_accepts_non_float_numbers_and_any_index(tmp_path):
    events = pd.DataFrame({"start": [1, 0], "end": ["2", "0.5"]}, index=["b", "a"])
    back = read_labels(write_labels(events, tmp_path / "a.txt"))
    assert back["start"].tolist() == [0.0, 1.0]
    assert back["end"].tolist() == [0.5, 2.0]


@pytest.mark.parametrize(
    ("events", "fragment"),
    [
        (pd.DataFrame({"start": [1.0]}), "missing column(s) ['end']"),
        (pd.DataFrame({"begin": [1.0], "end": [2.0]}), "missing column(s) ['start']"),
        (pd.DataFrame({"start": [1.0, 3.0], "end": [2.0, 1.0]}), "start 3.0 is after end 1.0"),
        (pd.DataFrame({"start": [-1.0], "end": [2.0]}), "start in row 0 is negative"),
        (pd.DataFrame({"start": [0.0], "end": [-2.0]}), "end in row 0 is negative"),
        (pd.DataFrame({"start": [np.nan], "end": [2.0]}), "start in row 0 is missing or not"),
        (pd.DataFrame({"start": [0.0], "end": [np.inf]}), "end in row 0 is missing or not finite"),
        (pd.DataFrame({"start": ["soon"], "end": [2.0]}), "start 'soon' in row 0 is not a number"),
        (pd.DataFrame({"start": [0.0], "end": [1.0], "label": ["a\nb"]}), "line break"),
        (
            pd.DataFrame({"start": [0.0], "end": [1.0], "low_hz": [-3.0]}),
            "low_hz in row 0 is negative",
        ),
        (
            pd.DataFrame({"start": [0.0], "end": [1.0], "low_hz": [5.0], "high_hz": [1.0]}),
            "low_hz is above high_hz in row 0",
        ),
    ],
)
def test_write_validation(tmp_path, events, fragment):
    path = tmp_path / "bad.txt"
    with pytest.raises(ValueError) as caught:
        write_labels(events, path)
    message = str(caught.value)
    assert f"Cannot write labels to {path}" in message
    assert fragment in message
    assert not path.exists()


def test_write_rejects_non_frames_and_bad_precision(tmp_path):
    with pytest.raises(TypeError, match="DataFrame"):
        write_labels([(1.0, 2.0, "p")], tmp_path / "a.txt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        write_labels(empty_events(), tmp_path / "a.txt", precision=-1)


# ----------------------------------------------------------------------------- paths


def test_labels_path_for(tmp_path):
    assert labels_path_for(tmp_path / "brew1.wav") == tmp_path / "brew1.txt"
    assert labels_path_for("rec.2024-05-01.flac").name == "rec.2024-05-01.txt"
    assert labels_path_for("noext").name == "noext.txt"
    with pytest.raises(ValueError, match="label file"):
        labels_path_for("brew1.txt")


# ----------------------------------------------------------------------------- properties

times = st.floats(min_value=0.0, max_value=1e5, allow_nan=False, allow_infinity=False)
label_texts = st.one_of(
    st.just(""),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"),
        min_size=1,
        max_size=12,
    ).filter(lambda text: text == text.strip() and not text.startswith("\\")),
)
frequencies = st.one_of(
    st.none(),
    st.tuples(
        st.one_of(st.just(math.nan), st.floats(min_value=0, max_value=1e5)),
        st.one_of(st.just(math.nan), st.floats(min_value=0, max_value=1e5)),
    ),
)


@st.composite
def event_rows(draw):
    a, b = draw(times), draw(times)
    spectrum = draw(frequencies)
    if spectrum is not None and not math.isnan(spectrum[0]) and not math.isnan(spectrum[1]):
        spectrum = tuple(sorted(spectrum))
    return min(a, b), max(a, b), draw(label_texts), spectrum


def frame_from(rows, *, spectral: bool) -> pd.DataFrame:
    events = pd.DataFrame(
        {
            "start": [row[0] for row in rows],
            "end": [row[1] for row in rows],
            "label": pd.Series([row[2] for row in rows], dtype=object),
        }
    )
    if spectral:
        events["low_hz"] = [math.nan if row[3] is None else row[3][0] for row in rows]
        events["high_hz"] = [math.nan if row[3] is None else row[3][1] for row in rows]
    return events


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(rows=st.lists(event_rows(), max_size=15), spectral=st.booleans())
def test_property_round_trip(tmp_path_factory, rows, spectral):
    events = frame_from(rows, spectral=spectral)
    path = write_labels(events, tmp_path_factory.mktemp("rt") / "events.txt")
    back = read_labels(path)

    expected = events.sort_values("start", kind="stable", ignore_index=True)
    assert len(back) == len(expected)
    np.testing.assert_allclose(back["start"], expected["start"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(back["end"], expected["end"], rtol=0, atol=1e-6)
    assert (back["start"] <= back["end"]).all()
    assert back["label"].tolist() == [label or PLOP_LABEL for label in expected["label"]]
    has_spectrum = spectral and expected[["low_hz", "high_hz"]].notna().any(axis=None)
    if has_spectrum:
        for column in ("low_hz", "high_hz"):
            np.testing.assert_allclose(back[column], expected[column], rtol=0, atol=1e-6)
    else:
        assert list(back.columns) == ["start", "end", "label"]


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_property_parser_raises_only_label_error(text):
    try:
        events = parse_labels(text)
    except LabelError as error:
        assert str(error).startswith("<text>, line ")
    else:
        assert_core_frame(events)
        assert (events["start"] >= 0).all() and (events["start"] <= events["end"]).all()


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789.,-eE\t \\\n\r\ufeffpx"))
def test_property_parser_on_label_like_text(text):
    try:
        parse_labels(text)
    except LabelError:
        pass


@FAST
@given(rows=st.lists(event_rows(), max_size=15), precision=st.integers(0, 9))
def test_property_decimal_comma_parses_like_dot(rows, precision):
    lines = []
    for start, end, label, spectrum in rows:
        lines.append(f"{start:.{precision}f}\t{end:.{precision}f}\t{label}")
        if spectrum is not None:
            low, high = (-1.0 if math.isnan(value) else value for value in spectrum)
            lines.append(f"\\\t{low:.{precision}f}\t{high:.{precision}f}")
    dot_text = "\n".join(lines) + "\n"
    comma_text = dot_text.replace(".", ",")
    # a label may itself contain "." — compare the numbers, and the labels modulo that
    dot, comma = parse_labels(dot_text), parse_labels(comma_text)
    pd.testing.assert_frame_equal(dot.drop(columns="label"), comma.drop(columns="label"))
    assert [label.replace(".", ",") for label in dot["label"]] == comma["label"].tolist()
