"""Fuzzed parameters against the schema: notebook parameters, parameters/*.yaml, schedule.yaml and period strings.

Every input is either accepted (and then satisfies the schema's promises) or refused with a ConfigError whose
message names what was wrong; nothing else ever escapes (no TypeError, no UnicodeDecodeError, no OverflowError).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from report_lib.errors import ConfigError
from report_lib.params import NotebookParameters, ParameterFiles, validate_notebook_parameters
from report_lib.periods import parse_period
from report_lib.run.schedule import load_schedule

VALID: dict[str, Any] = {
    "store": "S01",
    "store_name": "Main Street",
    "period_start": "2024-03-04",
    "period_end": "2024-03-10",
    "period_label": "2024-W10",
}
FIELDS = list(NotebookParameters.model_fields)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

huge_ints = st.integers(min_value=-(10**40), max_value=10**40)
nasty_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", " ", "..", ".", "../../etc", "a/b", "a\\b", "x\0y", "x\ny", "\u2028", "\ud7ff", "S01\r\n"]),
    st.text(max_size=5).map(lambda t: t * 200),  # long
)
values = st.one_of(
    st.none(),
    st.booleans(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
    st.binary(max_size=20),
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def mutated_parameters(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """VALID with some fields replaced by anything, some removed, some unknown ones added; and the names touched."""
    params = dict(VALID)
    touched: set[str] = set()
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        params[name] = draw(values)
        touched.add(name)
    for name in draw(st.lists(st.sampled_from(list(VALID)), max_size=2, unique=True)):
        params.pop(name, None)
        touched.add(name)
    for name in draw(st.lists(st.text(min_size=1, max_size=12), max_size=2, unique=True)):
        if name not in params:
            params[name] = draw(values)
            touched.add(name)
    return params, touched


def _check_accepted(params: NotebookParameters) -> None:
    """What an accepted set of parameters promises to the notebook and to the file system."""
    assert not any(ch in params.store for ch in "/\\\0\n\r") and params.store not in {".", ".."}
    assert 1 <= len(params.store) <= 64 and 1 <= len(params.store_name) <= 200 and len(params.currency) == 3
    assert params.period_start <= params.period_end
    assert 0 < params.anomaly_z <= 20 and 0 < params.low_cover_days <= 365 and 0 < params.min_support < 1
    assert 1 <= params.forecast_horizon <= 366
    assert all(math.isfinite(v) for v in (params.anomaly_z, params.low_cover_days, params.min_support))
    injected = params.for_papermill()
    assert json.loads(json.dumps(injected, allow_nan=False)) == injected  # plain JSON, as papermill injects it


@FUZZ
@given(mutated_parameters())
def test_notebook_parameters_are_accepted_whole_or_refused_by_name(case: tuple[dict[str, Any], set[str]]) -> None:
    params, touched = case
    try:
        accepted = validate_notebook_parameters(params)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("Invalid notebook parameters: ")
        named = touched | {"period_end"}  # the ordering check names period_end
        assert any(name in message for name in named), message
        return
    _check_accepted(accepted)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"anomaly_z": math.nan}, "anomaly_z"),
        ({"anomaly_z": math.inf}, "anomaly_z"),
        ({"forecast_horizon": 10**40}, "forecast_horizon"),
        ({"forecast_horizon": 28.5}, "forecast_horizon"),
        ({"store": "S01\u2028"}, None),  # a Unicode line separator is not a path separator: accepted, escaped later
        ({"store": "x" * 65}, "store"),
        ({"store_name": "é" * 200}, None),
        ({"period_start": "2024-02-30"}, "period_start"),
        ({"period_start": "1"}, "period_start"),
        ({"period_label": ""}, "period_label"),
        ({"currency": 123}, "currency"),
        ({"store": b"S01"}, None),  # pydantic's lax mode decodes bytes
    ],
)
def test_edge_values(change: dict[str, Any], named: str | None) -> None:
    if named is None:
        _check_accepted(validate_notebook_parameters({**VALID, **change}))
        return
    with pytest.raises(ConfigError, match=named):
        validate_notebook_parameters({**VALID, **change})


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), huge_ints, st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
DEFAULT_KEYS = ["period", "comparison", "formats", "sender", "thresholds", "retries", "execution_timeout"]


@st.composite
def settings_files(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    defaults = {key: draw(yaml_values) for key in draw(st.lists(st.sampled_from(DEFAULT_KEYS), max_size=3))}
    stores = draw(st.dictionaries(st.text(max_size=6), yaml_values, max_size=3))
    regions = draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=6), yaml_values, max_size=2)))
    return defaults, {"stores": stores, "regions": regions}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings_files())
def test_parameter_files_load_or_are_refused_naming_the_folder(
    tmp_path: Path, files: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    defaults, stores_file = files
    (tmp_path / "defaults.yaml").write_text(yaml.safe_dump(defaults, allow_unicode=True), encoding="utf-8")
    (tmp_path / "stores.yaml").write_text(yaml.safe_dump(stores_file, allow_unicode=True), encoding="utf-8")
    try:
        loaded = ParameterFiles.load(tmp_path)
    except ConfigError as exc:
        assert str(tmp_path) in str(exc)
        return
    assert 0 <= loaded.defaults.retries <= 10 and 10 <= loaded.defaults.execution_timeout <= 86_400


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00d\x00e\x00f",  # UTF-16 with a BOM
        b"period: \xe9t\xe9\n",  # latin-1
        b"\x89PNG\r\n\x1a\n\x00\x00",  # binary
        b"period: [unclosed\n",
        b"- a list\n- not a mapping\n",
        b"\xef\xbb\xbfperiod: last-week\nretries: 99\n",  # a BOM, then an out-of-range value
    ],
    ids=["utf16", "latin1", "binary", "bad-yaml", "a-list", "bom-out-of-range"],
)
def test_unreadable_settings_files_are_refused_naming_the_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "defaults.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match="defaults.yaml|" + str(tmp_path)):
        ParameterFiles.load(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=10), yaml_values, max_size=3), st.text(max_size=40))
def test_schedule_files_load_or_are_refused_naming_the_file(tmp_path: Path, jobs: dict[str, Any], cron: str) -> None:
    bodies = {name: ({"cron": cron, **body} if isinstance(body, dict) else body) for name, body in jobs.items()}
    document = {"jobs": bodies}
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    try:
        loaded = load_schedule(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    assert [job.name for job in loaded] == list(jobs)


period_text = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A(\d{1,5})-W(\d{1,3})\Z"),
    st.from_regex(r"\A(\d{1,5})-(\d{1,3})\Z"),
    st.from_regex(r"\Alast-\d{1,12}-days?\Z"),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}:\d{4}-\d{2}-\d{2}\Z"),
    st.sampled_from(["yesterday", "last-week", "last-month", " LAST-WEEK ", "0000-W01", "9999-W52", "9999-12"]),
)


@FUZZ
@given(period_text, st.dates())
def test_period_strings_parse_or_are_refused_listing_the_accepted_forms(text: str, today: dt.date) -> None:
    try:
        period = parse_period(text, today=today)
    except ConfigError as exc:
        assert "Accepted forms" in str(exc) or "expected" in str(exc)
        return
    assert period.start <= period.end and period.label
    assert set(period.label) <= set(string.ascii_letters + string.digits + "-:_ ,")
