"""Parameters are validated before any kernel starts, with messages that say what is wrong and what is allowed."""

from pathlib import Path

import pytest

from report_lib.errors import ConfigError
from report_lib.params import ParameterFiles, validate_notebook_parameters

ROOT = Path(__file__).resolve().parent.parent
VALID = {
    "store": "S01",
    "store_name": "Main Street",
    "period_start": "2024-03-04",
    "period_end": "2024-03-10",
    "period_label": "2024-W10",
}


def test_valid_parameters_become_plain_json() -> None:
    params = validate_notebook_parameters(VALID)
    assert params.for_papermill()["period_start"] == "2024-03-04"
    assert params.anomaly_z == 3.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"period_end": "2024-03-01"}, "period_end 2024-03-01 is before period_start 2024-03-04"),
        ({"period_start": "last tuesday"}, "period_start: Input should be a valid date"),
        ({"anomaly_z": -1}, "anomaly_z: Input should be greater than 0"),
        ({"forecast_horizon": 10_000}, "forecast_horizon: Input should be less than or equal to 366"),
        ({"store": "../etc"}, "may not contain path separators"),
        ({"currency": "EURO"}, "currency: String should have at most 3 characters"),
        ({"comparison": "yesterday"}, "comparison: Input should be 'previous' or 'last_year'"),
    ],
)
def test_bad_parameters_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_notebook_parameters({**VALID, **change})


def test_the_shipped_parameter_files_load_and_merge_thresholds() -> None:
    files = ParameterFiles.load(ROOT / "parameters")
    flagship = files.stores["S01"].thresholds.over(files.defaults.thresholds)
    assert flagship.anomaly_z == 3.0  # overridden
    assert flagship.forecast_horizon == files.defaults.thresholds.forecast_horizon  # inherited
    assert files.regions["North"].managers == ["regional.north@example.com"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retries: lots\n", "retries: Input should be a valid integer"),
        ("thresholds: {anomaly_z: 0}\n", "anomaly_z: Input should be greater than 0"),
        ("- a list\n", "must hold a mapping"),
        ("period: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_defaults_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "defaults.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        ParameterFiles.load(tmp_path)
