"""The linkage input: one row per person record, identifiers normalised for comparison.

Built from `valid.<contract>` (quasi-identifiers: date of birth, sex, postcode) joined to
`identity.<contract>` (direct identifiers: NHS number, UPN, UPRN, names, agency person ids)
by (delivery, row). It lives only in memory and in the restricted `identity` schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestration.partnership.contracts.model import Contract

# Contracts about lists of people rather than people's records: not linked, used as flags.
OPT_OUT_CONTRACT = "nhs_optout__opt_outs"
# Direct identifiers with a meaning of their own; any other direct identifier of a contract
# is an agency's own person number (police nominal id, children's services child id).
_KNOWN = {"nhs_number", "upn", "uprn", "forename", "surname", "address_line"}

RECORD_COLUMNS = ("contract_id", "agency", "delivery_id", "row_number", "nhs_number", "upn", "uprn", "local_id",
                  "forename", "surname", "date_of_birth", "sex", "postcode", "day")


def name_sql(expr: str) -> str:
    """Names compared as letters only: accents stripped, case folded, no spaces, hyphens or apostrophes."""
    return f"nullif(regexp_replace(lower(strip_accents(nfc_normalize({expr}))), '[^a-z]', '', 'g'), '')"


def nhs_sql(expr: str) -> str:
    """Digits only; kept only when it is ten digits with a valid modulus-11 check digit."""
    d = f"regexp_replace({expr}, '[^0-9]', '', 'g')"
    weighted = " + ".join(f"{10 - i} * cast(substr({d}, {i + 1}, 1) as integer)" for i in range(9))
    check = f"(11 - (({weighted}) % 11)) % 11"
    return (f"case when length({d}) = 10 and {check} <> 10 and {check} = cast(substr({d}, 10, 1) as integer) "
            f"then {d} end")


def upn_sql(expr: str) -> str:
    """A UPN of 13 characters, upper case (its check letter is enforced by the contract)."""
    v = f"upper(regexp_replace({expr}, '\\s', '', 'g'))"
    return f"case when length({v}) = 13 then {v} end"


def uprn_sql(expr: str) -> str:
    """A UPRN is up to 12 digits; leading zeros carry no meaning."""
    v = f"ltrim(regexp_replace({expr}, '\\s', '', 'g'), '0')"
    return f"case when regexp_full_match({v}, '[0-9]{{1,12}}') then {v} end"


def postcode_sql(expr: str) -> str:
    """Upper case, with the single space restored before the inward code (`RV62FJ` -> `RV6 2FJ`)."""
    v = f"upper(regexp_replace({expr}, '\\s', '', 'g'))"
    return f"case when length({v}) between 5 and 7 then substr({v}, 1, length({v}) - 3) || ' ' || right({v}, 3) end"


def sex_sql(expr: str) -> str:
    """NHS codes (1 male, 2 female, 9 not stated) and M/F/U letters mapped to M, F or unknown."""
    return f"case upper(trim({expr})) when '1' then 'M' when 'M' then 'M' when '2' then 'F' when 'F' then 'F' end"


@dataclass(frozen=True)
class PersonSource:
    contract: Contract

    @property
    def id(self) -> str:
        return self.contract.id

    def has(self, column: str) -> bool:
        return column in self.contract.column_names

    @property
    def local_id_columns(self) -> list[str]:
        return [c.name for c in self.contract.columns if c.classification == "direct_identifier" and c.name not in _KNOWN]

    def select_sql(self, db: str = "", deliveries: Sequence[int] | None = None) -> str:
        """One row per valid row, identifiers normalised; `db` is the attached warehouse's prefix;
        `deliveries`: only the rows of these deliveries."""
        t = self.contract.table
        ident = lambda col: f'i."{col}"' if self.has(col) else "null"  # noqa: E731
        quasi = lambda col: f'v."{col}"' if self.has(col) else "null"  # noqa: E731
        local = self.local_id_columns
        local_parts = ", ".join(f"nullif(trim(i.\"{c}\"), '')" for c in local)
        local_sql = f"'{self.id}:' || coalesce({local_parts})" if local else "null"
        dob = f"cast({quasi('date_of_birth')} as date)" if self.has("date_of_birth") else "cast(null as date)"
        # The record's date (its dated column, the contract's freshness column), read with it
        # so that a night linking everything need not look it up again (`spells`).
        f = self.contract.freshness
        day = f'cast(v."{f.column}" as date)' if f is not None else "cast(null as date)"
        ids = "" if deliveries is None else f"_delivery_id in ({', '.join(str(int(d)) for d in deliveries) or 'null'})"
        where = f"\n            where v.{ids}" if ids else ""
        identity = f'(select * from {db}identity."{t}" where {ids})' if ids else f'{db}identity."{t}"'
        return f"""
            select '{self.id}' as contract_id, '{self.contract.agency}' as agency,
                   v._delivery_id as delivery_id, v._row_number as row_number,
                   {nhs_sql(ident('nhs_number')) if self.has('nhs_number') else 'cast(null as varchar)'} as nhs_number,
                   {upn_sql(ident('upn')) if self.has('upn') else 'cast(null as varchar)'} as upn,
                   {uprn_sql(ident('uprn')) if self.has('uprn') else 'cast(null as varchar)'} as uprn,
                   cast({local_sql} as varchar) as local_id,
                   {name_sql(ident('forename')) if self.has('forename') else 'cast(null as varchar)'} as forename,
                   {name_sql(ident('surname')) if self.has('surname') else 'cast(null as varchar)'} as surname,
                   {dob} as date_of_birth,
                   {sex_sql(quasi('sex')) if self.has('sex') else 'cast(null as varchar)'} as sex,
                   {postcode_sql(quasi('postcode')) if self.has('postcode') else 'cast(null as varchar)'} as postcode,
                   {day} as day
            from {db}valid."{t}" v
            left join {identity} i using (_delivery_id, _row_number){where}"""


def person_sources(contracts: dict[str, Contract]) -> list[PersonSource]:
    """Every extract about people: those with a direct identifier, except the opt-out list."""
    out = []
    for c in sorted(contracts.values(), key=lambda c: c.id):
        if c.id == OPT_OUT_CONTRACT:
            continue
        if any(col.classification == "direct_identifier" for col in c.columns):
            out.append(PersonSource(c))
    return out


def records_sql(sources: list[PersonSource], existing: set[str], db: str = "",
                deliveries: Mapping[str, Sequence[int]] | None = None) -> str:
    """The union of every person source whose valid table exists; with `deliveries`
    ({contract id: delivery ids}), only the rows of those deliveries."""
    if deliveries is None:
        parts = [s.select_sql(db) for s in sources if s.contract.table in existing]
    else:
        parts = [s.select_sql(db, deliveries[s.id]) for s in sources
                 if s.contract.table in existing and deliveries.get(s.id)]
    if not parts:
        cols = ", ".join(f"cast(null as {'date' if c in ('date_of_birth', 'day') else 'bigint' if c in ('delivery_id', 'row_number') else 'varchar'}) as {c}"
                         for c in RECORD_COLUMNS)
        return f"select {cols} where false"
    return "\nunion all\n".join(parts)


# Street types as agencies abbreviate them, written out so that `12 Oak Rd` is `12 oak road`.
STREET_TYPES = {"rd": "road", "st": "street", "ave": "avenue", "av": "avenue", "cl": "close", "ln": "lane",
                "dr": "drive", "cres": "crescent", "gdns": "gardens", "terr": "terrace", "ter": "terrace",
                "pl": "place", "ct": "court", "sq": "square"}


def address_key_sql(expr: str) -> str:
    """An address line compared: accents stripped, lower case, punctuation and runs of spaces
    made one space, the street type at its end written out (`12, OAK RD.` -> `12 oak road`)."""
    v = f"trim(regexp_replace(lower(strip_accents(nfc_normalize({expr}))), '[^a-z0-9]+', ' ', 'g'))"
    for short, full in STREET_TYPES.items():
        v = f"regexp_replace({v}, ' {short}$', ' {full}')"
    return f"nullif({v}, '')"


def address_postcodes_sql(lookup_csv: str, address_lines: bool = False) -> str:
    """UPRN -> postcode (and, with `address_lines`, the address line's key) from the address
    gazetteer (`reference/address_lookup.csv`), normalised as above; a UPRN listed with two
    different postcodes is left out."""
    path = lookup_csv.replace("'", "''")
    key = address_key_sql("address_line") if address_lines else "cast(null as varchar)"
    return f"""select uprn, min(postcode) as postcode, min(address_key) as address_key from (
                   select {uprn_sql('uprn')} as uprn, {postcode_sql('postcode')} as postcode, {key} as address_key
                   from read_csv('{path}', header = true, all_varchar = true))
               where uprn is not null and postcode is not null
               group by uprn having count(distinct postcode) = 1"""
