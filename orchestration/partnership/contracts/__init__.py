"""Agency data contracts: the ODCS v3 files read into one typed model, their extension schema, and
the comparison of two versions of a contract. Every check of an extract is derived from here."""
