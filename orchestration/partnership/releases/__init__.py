"""Releases: the sharing protocols, disclosure control, the release engine (scope, build, publish,
log) and, in `audit`, the independent checker that must pass before anything leaves."""
