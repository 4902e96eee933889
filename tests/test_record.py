import datetime as dt
import math

import nbformat
import numpy as np
import pandas as pd
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from report_lib.record import RECORD_MIMETYPE, _jsonable, read_records


def test_values_become_plain_json() -> None:
    frame = pd.DataFrame({"day": pd.to_datetime(["2024-03-04"]), "value": [np.float64(1.5)], "n": [np.int64(2)]})
    series = pd.Series([1.0, math.nan], index=pd.to_datetime(["2024-03-04", "2024-03-05"]))
    assert _jsonable(frame) == [{"day": "2024-03-04T00:00:00", "value": 1.5, "n": 2}]
    assert _jsonable(series) == {"2024-03-04T00:00:00": 1.0, "2024-03-05T00:00:00": None}
    assert _jsonable({"d": dt.date(2024, 3, 4), "x": (np.float32(0.5), pd.NaT)}) == {
        "d": "2024-03-04",
        "x": [0.5, None],
    }


def test_records_round_trip_through_a_kernel() -> None:
    notebook = new_notebook(
        cells=[
            new_code_cell("from report_lib.record import record\nrecord('a', 1)\nrecord('b', {'x': [1, 2]})"),
            new_code_cell("record('a', 2)"),
        ]
    )
    NotebookClient(notebook, kernel_name="python3", timeout=60).execute()
    assert read_records(notebook) == {"a": 2, "b": {"x": [1, 2]}}  # a later record of a name wins
    assert RECORD_MIMETYPE in notebook.cells[0].outputs[0]["data"]
    assert isinstance(nbformat.writes(notebook), str)
