"""Running the warehouse: retention, the one SMTP client, and test pause points."""
