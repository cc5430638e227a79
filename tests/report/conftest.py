import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("report_helpers", Path(__file__).with_name("report_helpers.py"))
helpers_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers_module)


@pytest.fixture
def helpers():
    return helpers_module
