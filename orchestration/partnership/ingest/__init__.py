"""The night's ingest: landed files registered once, archived, validated and loaded in one
transaction per delivery; the data owner's report and e-mail for each delivery."""
