"""Demo partnership generator: a synthetic Riverside District and its agencies' extract files.

    from orchestration.partnership.generator import generate, PRESETS
    summary = generate(data_dir, preset="small", seed=42)

No Dagster imports here: the generator is plain Python (numpy, polars, pyarrow, openpyxl).
"""

from .core import generate
from .presets import PRESETS, Preset
from .spec import EXTRACTS

__all__ = ["generate", "PRESETS", "Preset", "EXTRACTS"]
