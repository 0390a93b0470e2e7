"""Demo partnership generator: a synthetic Riverside District and its agencies' extract files.

    from orchestration.partnership.demo import generate, PRESETS
    summary = generate(data_dir, preset="small", seed=42)

No Dagster imports here: the generator is plain Python (numpy, polars, pyarrow, openpyxl).
"""

from orchestration.partnership.demo.core import generate
from orchestration.partnership.demo.presets import PRESETS, Preset
from orchestration.partnership.demo.spec import EXTRACTS

__all__ = ["generate", "PRESETS", "Preset", "EXTRACTS"]
