"""Size presets for the demo partnership."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    residents: int  # approximate resident population at the start of the simulation
    wards: int
    lsoas: int
    share_65_plus_boost: float = 1.0  # multiplies the weight of older households


PRESETS: dict[str, Preset] = {
    "small": Preset("small", residents=12_000, wards=12, lsoas=75),
    "district": Preset("district", residents=120_000, wards=12, lsoas=75),
    "county": Preset("county", residents=1_000_000, wards=96, lsoas=625, share_65_plus_boost=0.8),
}
