"""Size presets for the demo partnership, and the shards a large one is generated in."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Preset:
    name: str
    residents: int  # approximate resident population at the start of the simulation
    wards: int
    lsoas: int
    share_65_plus_boost: float = 1.0  # multiplies the weight of older households
    # A population is simulated in this many equal parts, one after another, each written out
    # before the next starts: the generator's memory is that of one part, whatever the total.
    shards: int = 1

    def part(self) -> Preset:
        """The preset one shard simulates (its share of residents, wards and LSOAs)."""
        return replace(self, residents=self.residents // self.shards, wards=self.wards // self.shards,
                       lsoas=self.lsoas // self.shards, shards=1)


@dataclass(frozen=True)
class Shard:
    """Which part of a sharded population is being simulated, and where its numbering starts:
    every identifier a part makes (people, households, wards, LSOAs, postcodes, UPRNs, NHS
    numbers, UPNs, record ids) is distinct from every other part's."""

    index: int = 0
    count: int = 1
    ward_offset: int = 0
    lsoa_offset: int = 0
    person_offset: int = 0
    household_offset: int = 0

    @property
    def ids(self) -> tuple[int, int]:
        """(index, count): record ids are interleaved, the part's number being the id mod count."""
        return self.index, self.count


WHOLE = Shard()

PRESETS: dict[str, Preset] = {
    "small": Preset("small", residents=12_000, wards=12, lsoas=75),
    "district": Preset("district", residents=120_000, wards=12, lsoas=75),
    "county": Preset("county", residents=1_000_000, wards=96, lsoas=625, share_65_plus_boost=0.8),
    # Five counties' people: five shards, each the county's size.
    "region": Preset("region", residents=5_000_000, wards=480, lsoas=3125, share_65_plus_boost=0.8, shards=5),
}
