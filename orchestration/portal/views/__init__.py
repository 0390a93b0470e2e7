"""The portal's views, one module per role, each calling permissions.py before reading anything."""
