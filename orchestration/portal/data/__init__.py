"""What the portal reads, as plain Python (no Django): the ops snapshot (`ops`), the release
folders (`releases`), the dbt docs of released tables (`models`), the data-owner reports
(`reports`). Every function takes ids the caller has already been allowed (permissions.py) and
still refuses any path outside the data folder."""
