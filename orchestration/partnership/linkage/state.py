"""What linkage's phases share: the tables it keeps between nights and their versions, the
identifying columns it compares, the night's summary, and where its model and report live."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.settings import Settings

# Match methods, strongest first: the order links are applied in.
METHODS = ("nhs_number", "upn", "local_id", "uprn_dob", "probabilistic")
PERSON_PREFIX = "LP"
HOUSEHOLD_PREFIX = "LH"
IDENT = ("nhs_number", "upn", "uprn", "local_id", "forename", "surname", "date_of_birth", "sex", "postcode")
# Bump when what is compared or kept changes (normalisation, derived columns, the review
# threshold): stored scores are then discarded and every profile is scored again.
SCORING_VERSION = 4  # 4: blocking rules whose blocks stay small as the population grows
STATE_TABLES = ("linkage_scoring_state", "linkage_scored_profiles", "linkage_scored_pairs", "linkage_term_frequencies")
# What a night needs to link only the records that changed (see `select_region`). Bump STATE_VERSION
# when their meaning changes: the next night then links every record again and rewrites them.
STATE_VERSION = 3  # 3: the gazetteer's address lines (address_key); 2: a person's household by UPRN only
DELTA_TABLES = ("linkage_state", "linkage_profiles", "linkage_person_addresses", "linkage_deliveries")
# The gazetteer's UPRN -> postcode table, normalised, for the next night while the file is the same.
ADDRESS_TABLE = "linkage_address_postcodes"
# The people each run changed, until a dbt build has rebuilt their records (write._log_changed_people).
CHANGE_LOG = "linkage.person_changes"
# The households whose members each run changed, logged with the same run numbers
# (write._log_changed_households).
HOUSEHOLD_CHANGE_LOG = "linkage.household_changes"
KEY = ("contract_id", "delivery_id", "row_number")
# A profile's key: a hash of what is compared about it (`{p}`: the columns' prefix; `{postcode}`:
# the postcode compared).
PKEY = ("md5_number(to_json({{" + ", ".join(f"'{c}': {{p}}{c}" for c in IDENT)
        + ", 'compared_postcode': {postcode}}}))")
# Each record's key and profile, stored once per record: its identifiers and person are its
# profile's (`identity.linkage_profiles`), its household its person's (`linkage.persons`).
RECORD_KEYS = "linkage_record_keys"
# Each record's key joined with its profile (`{db}`: the warehouse's prefix).
_KEYED_PROFILES = f"{{db}}identity.{RECORD_KEYS} k join {{db}}identity.linkage_profiles p using (pkey)"
# The records with their person and identifiers, as linkage reads them back (a query of
# `wh`; only the columns a reader selects are read, and a filter on the key reaches the scan).
STORED_RECORDS = f"""(select k.contract_id, k.delivery_id, k.row_number, k.pkey, p.person_id,
                             {", ".join(f"p.{c}" for c in IDENT)}
                      from {_KEYED_PROFILES.format(db="wh.")})"""
# What the restricted `identity.linkage_records` view shows (each record's identifiers, person and
# household: what the identifiable protocol needs to name a person), as stored in the warehouse.
RECORDS_VIEW = f"""select k.contract_id, k.delivery_id, k.row_number, p.person_id, pe.household_id,
                          {", ".join(f"p.{c}" for c in IDENT)}, k.pkey
                   from {_KEYED_PROFILES.format(db="")}
                   join linkage.persons pe on pe.person_id = p.person_id"""
SPLINK_SELECT = """pid as unique_id, forename, surname, strftime(date_of_birth, '%Y-%m-%d') as dob, sex,
                    compared_postcode as postcode, nhs_number, uprn"""
FIRST = "first_contract_id, first_delivery_id, first_row_number"


@dataclass
class LinkageSummary:
    """What a night's linkage did: counts only, written as the aggregate report."""

    records: int = 0
    profiles: int = 0
    persons: int = 0
    households: int = 0
    opted_out_persons: int = 0
    opted_out_records: int = 0
    records_by_method: dict[str, int] = field(default_factory=dict)
    probabilistic_pairs_scored: int = 0
    profiles_scored: int = 0
    records_scored: int = 0
    pairs_found_tonight: int = 0
    full_rescore: bool = True
    incremental: bool = False
    records_linked: int = 0
    profiles_linked: int = 0
    links_refused: int = 0
    clerical_review_pairs: int = 0
    address_lines_matched: int = 0  # records whose address line was matched tonight (the others' were kept)
    spells_worked_out: int = 0  # people whose address spells were worked out tonight (the others' were kept)
    persons_kept_from_last_night: int = 0
    new_persons: int = 0
    model_trained: bool = False
    model_path: str = ""
    match_threshold: float = splink_model.MATCH_THRESHOLD
    review_threshold: float = splink_model.REVIEW_THRESHOLD
    memory_limit: str = ""  # the working database's, as DuckDB reports it
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # the process's, all threads: load-independent


def model_path(settings: Settings) -> Path:
    """The trained Splink model (parameters and SQL only, no identifying values)."""
    return settings.data_dir / "linkage" / "model.json"


def report_dir(settings: Settings) -> Path:
    """Where the night's aggregate linkage report is written."""
    return settings.reports_dir / "linkage"


def tables(con: duckdb.DuckDBPyConnection, db: str, schema: str) -> set[str]:
    """The tables of one schema of one attached database (linkage attaches the warehouse as `wh`)."""
    return {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ?", [db, schema]).fetchall()}


def numpy_columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray]:
    """A query's result as one numpy array per column."""
    frame = con.sql(sql).pl()
    return {c: frame[c].to_numpy() for c in frame.columns}


# A person's first record and latest address, as `persons_all` and the stored
# `identity.linkage_person_addresses` carry them.
PERSON_ADDRESS = f"person_id, records, {FIRST}, last_uprn, last_postcode, last_surname"
# The stored people outside the groups linked again tonight (`prev_ids`: see `select_region`).
STORED_PERSONS = """(select * from wh.identity.linkage_person_addresses
                       where person_id not in (select person_id from prev_ids))"""
