"""The README documents every setting, with its real default."""

from __future__ import annotations

import re

from eyes.config import Settings
from tests.conftest import ROOT


def test_readme_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `EYES_([A-Z0-9_]+)` \| ([^|]+) \|", readme, flags=re.M))
    for name, field in Settings.model_fields.items():
        key = name.upper()
        assert key in rows, f"README.md does not document EYES_{key}"
        default = field.default
        shown = (
            "(empty)"
            if default == ""
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        assert rows[key].strip() == shown, f"EYES_{key}: README says {rows[key].strip()}, code says {shown}"
    for key in rows:
        assert key.lower() in Settings.model_fields, f"README documents EYES_{key}, which does not exist"
